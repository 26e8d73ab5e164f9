"""Command-line values (dsl/params.py): `--set NAME=VALUE` and `--input NAME=1x3x224x224`."""
import pytest

from netspec.dsl.errors import NetspecError
from netspec.dsl.params import parse_input_shapes, parse_overrides


def test_set_values_are_constant_expressions():
    assert parse_overrides(["d=256", "bias=false", "layers=[2, 2, 2, 2]", "act=\"gelu\"", "half=2 ** 3 // 2",
                            "block=basic", "std=0.02", "none=none"]) == \
        {"d": 256, "bias": False, "layers": [2, 2, 2, 2], "act": "gelu", "half": 4, "block": "basic",
         "std": 0.02, "none": None}


def test_a_value_that_is_not_a_constant_is_its_text(tmp_path):
    marker = tmp_path / "pwned"
    text = f'__import__("os").system("touch {marker}")'
    assert parse_overrides([f"p={text}", "q=a b"]) == {"p": text, "q": "a b"}
    assert not marker.exists()


@pytest.mark.parametrize("item", ["d", "=3", "2d=1"])
def test_bad_set_items(item):
    with pytest.raises(NetspecError) as e:
        parse_overrides([item])
    assert str(e.value) == f"error: --set takes NAME=VALUE, got '{item}'"


def test_input_shapes():
    assert parse_input_shapes(["x=1x3x224x224", "idx=4,128"]) == {"x": (1, 3, 224, 224), "idx": (4, 128)}
    for bad in ("x=1x0", "x", "x=ax2"):
        with pytest.raises(NetspecError, match="--input takes NAME=1x3x224x224"):
            parse_input_shapes([bad])
