"""`netspec compile`: every spec we ship or document ejects to a module that imports, builds
with its default arguments and has exactly `netspec.build`'s state_dict keys in build's order
(so a checkpoint of one loads into the other, key for key), and reads like hand-written code.

Which specs: every model of stdlib/*.nn and specs/*.nn; every .nn under tests/ except
tests/errors/ (fixtures written to fail); every model of a ```nn block of README.md and docs/*.md
that checks and analyzes on its own (some are written to show an error); and the corner cases below.
"""
from __future__ import annotations

import atexit
import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import netspec
from netspec.compiler.eject import eject
from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import check_all

ROOT = Path(__file__).resolve().parents[2]
_DOCS_DIR = Path(tempfile.mkdtemp(prefix="netspec-eject-docs-"))
atexit.register(shutil.rmtree, _DOCS_DIR, True)

# corner cases of registration order: a Parameter beside numbered blocks, a group holding
# numbered members and a named sub-group, a group declared before the layer that fills it
CORNERS = {
    "class_token.nn": """\
block Enc(d):
    input x
    norm: LayerNorm(d)
    fc: Linear(d, d)
    +x

model ViTTiny(d=8, depth=3):
    input x: float[B=2, 4, 8]
    cls: Parameter(1, 1, d, init=zeros)
    pos: Parameter(1, 5, d, init=zeros)
    t = cat(cls.expand(B, 1, d), x, dim=1) + pos
    blocks:
        repeat depth:
            Enc(d)
    head: Linear(d, 2)
    head y
""",
    "mixed_group.nn": """\
model Mixed():
    input x: float[B=1, 4]
    g:
        Linear(4, 4)
        sub:
            fc: Linear(4, 4)
            ReLU()
        Linear(4, 3)
    head y
""",
}


def _doc_specs() -> list[Path]:
    """The ```nn blocks of the docs, each in a file (named blocks under their own names,
    all in one folder so imports between them resolve)."""
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, m in enumerate(re.finditer(r"^```nn( [^\n]*)?\n(.*?)^```", doc.read_text(), re.S | re.M)):
            name = (m.group(1) or "").strip() or f"{doc.stem}_{i}.nn"
            path = _DOCS_DIR / name
            path.write_text(m.group(2))
            out.append(path)
    return out


def _cases():
    files = sorted((ROOT / "stdlib").glob("*.nn")) + sorted((ROOT / "specs").glob("*.nn"))
    files += sorted(p for p in (ROOT / "tests").rglob("*.nn") if "errors" not in p.relative_to(ROOT / "tests").parts)
    for name, text in CORNERS.items():
        (_DOCS_DIR / name).write_text(text)
        files.append(_DOCS_DIR / name)
    cases = []
    for f in files:  # these must check: a failure here fails collection, loudly
        _, checked, _ = check_all(f)
        where = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f.name
        cases += [pytest.param(f, c.graph.name, id=f"{where}:{c.graph.name}") for c in checked]
    for f in _doc_specs():
        try:
            _, checked, _ = check_all(f)
        except NetspecError:  # a block that shows an error, or a fragment
            continue
        for c in checked:
            try:
                netspec.analyze(f, c.graph.name)
            except NetspecError:  # one that shows a shape error
                continue
            cases.append(pytest.param(f, c.graph.name, id=f"{f.name}:{c.graph.name}"))
    return cases


CASES = _cases()


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_corpus_is_what_it_says():
    ids = {c.id for c in CASES}
    assert {"stdlib/gpt2.nn:GPT2", "stdlib/resnet.nn:ResNet50", "specs/transformer.nn:Transformer",
            "class_token.nn:ViTTiny", "mixed_group.nn:Mixed", "LANGUAGE_7.nn:MobileNetV2Tiny"} <= ids, sorted(ids)
    assert len(CASES) > 50


@pytest.mark.parametrize("file,model", CASES)
def test_ejected_module_has_builds_keys_in_builds_order(file, model, tmp_path):
    code = eject(file, model)
    out = tmp_path / "ejected.py"
    out.write_text(code)
    module = _import(out, f"ejected_{abs(hash((str(file), model)))}")
    with torch.device("meta"):  # GPT-2's 124M parameters cost nothing here
        ejected = getattr(module, model)()
    built = netspec.build(file, model, device="meta")
    assert list(ejected.state_dict()) == list(built.state_dict())
    assert [tuple(t.shape) for t in ejected.state_dict().values()] == \
        [tuple(t.shape) for t in built.state_dict().values()]


def test_a_class_token_registers_before_the_blocks_as_in_build():
    case = next(c for c in CASES if c.id == "class_token.nn:ViTTiny")
    built = netspec.build(case.values[0], device="meta")
    assert list(built.state_dict())[:4] == ["cls", "pos", "blocks.0.norm.weight", "blocks.0.norm.bias"]


SMALL = [c for c in CASES if not str(c.values[0]).startswith(str(ROOT / "stdlib"))]  # stdlib: test_compiler.py


@pytest.mark.parametrize("file,model", SMALL)
def test_ejected_module_computes_what_build_computes(file, model, tmp_path):
    torch.manual_seed(0)
    built = netspec.build(file, model).eval()
    out = tmp_path / "ejected.py"
    out.write_text(eject(file, model))
    ejected = getattr(_import(out, f"numeric_{abs(hash((str(file), model)))}"), model)().eval()
    ejected.load_state_dict(built.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randint(0, 2, i.shape, generator=g) if not i.dtype.startswith("float") else
          torch.randn(i.shape, generator=g) for i in built.netspec.inputs]
    with torch.no_grad():
        torch.testing.assert_close(ejected(*xs), built(*xs))


def _ejected(tmp_path, name, file, model=None, overrides=None):
    out = tmp_path / f"{name}.py"
    code = eject(file, model, overrides)
    out.write_text(code)
    return code, _import(out, f"{name}_{abs(hash(str(tmp_path)))}")


def test_forward_reads_as_people_write_it(tmp_path):
    codes = {name: _ejected(tmp_path, name, ROOT / f, overrides=o)[0] for name, f, o in [
        ("gpt2", "stdlib/gpt2.nn", {"n_layer": 2}), ("unet", "stdlib/unet.nn", None),
        ("resnet", "stdlib/resnet.nn", None), ("attention", "specs/attention.nn", None),
        ("transformer", "specs/transformer.nn", None)]}
    for name, code in codes.items():
        forwards = "\n".join(code.split("def forward")[1:])
        assert not re.search(r"= None$|;  ", forwards, re.M), name  # fx's dead assignments
        assert "torch.functional." not in code and "torch._C" not in code, name
        assert not re.search(r"dim = |getattr\(self\.\w+, \"\d+\"\)", forwards), name
    # a ModuleList's members called in turn are a loop, as people write it
    assert "transformer_h = transformer_drop\n        for layer in self.transformer.h:\n" \
           "            transformer_h = layer(transformer_h)\n" \
           "        transformer_ln_f = self.transformer.ln_f(transformer_h)\n" in codes["gpt2"]
    assert "h=nn.ModuleList([Block(n_embd=n_embd, n_head=n_head, n_layer=n_layer, dropout=dropout, bias=True) " \
           "for _ in range(n_layer)])" in codes["gpt2"]
    assert "cat = torch.cat([center_crop, upconv], dim=1)" in codes["unet"]
    assert "layer1 = maxpool\n        for layer in self.layer1:\n            layer1 = layer(layer1)\n" in codes["resnet"]
    assert "q, k, v = torch.split(qkv, self.d, dim=2)" in codes["attention"]  # sizes as the spec computes them


def test_a_group_with_named_members_keeps_getattr_for_its_numbers(tmp_path):
    case = next(c for c in CASES if c.id == "mixed_group.nn:Mixed")
    code, module = _ejected(tmp_path, "mixed", case.values[0])
    assert "g_0 = getattr(self.g, '0')(x)" in code
    assert module.Mixed()(torch.zeros(1, 4)).shape == (1, 3)


def test_the_model_parameters_are_init_arguments(tmp_path):
    import inspect
    _, module = _ejected(tmp_path, "lenet", ROOT / "stdlib/lenet.nn", overrides={"num_classes": 7})
    signature = inspect.signature(module.LeNet5)
    assert {k: p.default for k, p in signature.parameters.items()} == \
        {"num_classes": 7, "in_channels": 1, "activation": "tanh", "pool": "avg", "input_size": 32}
    for other in ({"num_classes": 7}, {"num_classes": 3, "in_channels": 3, "input_size": 28}):
        model = module.LeNet5(**other)  # sizes are free: the layers are sized from the arguments
        assert [(k, tuple(t.shape)) for k, t in model.state_dict().items()] == \
            [(k, tuple(t.shape)) for k, t in netspec.build(ROOT / "stdlib/lenet.nn", **other).state_dict().items()]
    with pytest.raises(ValueError) as err:  # pool and activation choose layers: written out for one value
        module.LeNet5(num_classes=10, pool="max")
    assert str(err.value) == (
        "LeNet5 was generated for {'activation': 'tanh', 'pool': 'avg'}; for {'pool': 'max'} generate it again: "
        f"netspec compile {ROOT / 'stdlib/lenet.nn'} --model LeNet5 --set num_classes=10 pool=max")


def test_gpt2_ejected_at_a_setting_is_build_at_that_setting(tmp_path):
    small = {"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 100, "block_size": 32}
    _, module = _ejected(tmp_path, "gpt2", ROOT / "stdlib/gpt2.nn", overrides=small)
    with torch.device("meta"):
        ejected = module.GPT2(**small)
    built = netspec.build(ROOT / "stdlib/gpt2.nn", device="meta", **small)
    assert [(k, tuple(t.shape)) for k, t in ejected.state_dict().items()] == \
        [(k, tuple(t.shape)) for k, t in built.state_dict().items()]
    with pytest.raises(ValueError, match=r"^GPT2 was generated for \{'bias': True\}; for \{'bias': False\} generate "
                                          r"it again: .* --model GPT2 --set vocab_size=100 block_size=32 n_layer=3 "
                                          r"n_head=4 n_embd=64 bias=false$"):
        module.GPT2(**dict(small, n_layer=3, bias=False))  # no bias: other layers, another file


def test_a_parameter_named_like_a_module_global_is_renamed(tmp_path):
    spec = tmp_path / "names.nn"
    spec.write_text("model Names(nn=4, torch=3, self=2):\n    input x: float[B=1, 4]\n    fc: Linear(nn, torch)\n"
                    "    head y\n")
    code, module = _ejected(tmp_path, "names", spec)
    assert "def __init__(self, nn_=4, torch_=3, self_=2):" in code
    assert module.Names(nn_=4).fc.out_features == 3
    spec.write_text("model Builtins(range=2, max=3, math=4):\n    input x: float[B=1, math]\n    h:\n"
                    "        repeat range:\n            Linear(math, max(max, 2))\n            Linear(max(max, 2), math)\n"
                    "    head y\n")
    code, module = _ejected(tmp_path, "builtins", spec)  # `range(...)` and `max(...)` still mean Python's
    assert "def __init__(self, range_=2, max_=3, math_=4):" in code
    assert "nn.Linear(math_, max(max_, 2))" in code
    assert "('range',)," in code  # two layers per repeat: written out, its count fixed
    assert [tuple(t.shape) for t in module.Builtins(max_=5, math_=6).state_dict().values()] == \
        [tuple(t.shape) for t in netspec.build(spec, max=5, math=6).state_dict().values()]
