"""A missing module of the training extras is one clear error naming the install command,
in Python and on the command line, never a bare ModuleNotFoundError or a traceback."""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch
import torch.distributed  # noqa: F401 - loaded before a test hides numpy: torch caches a failed numpy init

from netspec.cli import main as netspec_main
from netspec.dsl.errors import NetspecError
from netspec.train.extras import EXTRAS, INSTALL, MissingExtraError, require

INSTALL_LINE = "pip install 'netspec-nn[train]'"


class Hide:
    """A meta-path finder that makes `names` (and their submodules) impossible to import."""

    def __init__(self, *names: str):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


@pytest.fixture
def hide(monkeypatch):
    """hide("yaml", ...): forget those modules (and the netspec.train modules that hold them) and
    block their import for the test; monkeypatch restores sys.modules and sys.meta_path."""
    def go(*names: str) -> None:
        for mod in list(sys.modules):
            if mod.split(".")[0] in names or mod.startswith("netspec.train."):
                parent, _, child = mod.rpartition(".")
                if hasattr(sys.modules.get(parent), child):  # re-imports rebind it: restore it after
                    monkeypatch.setattr(sys.modules[parent], child, getattr(sys.modules[parent], child))
                monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [Hide(*names)] + sys.meta_path)
    yield go
    monkeypatch.undo()
    assert torch.from_numpy(np.zeros(1)).shape == (1,)  # torch still sees numpy: no test after this one breaks


def test_the_table_matches_the_declared_extra():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = {r.split(">")[0].split("=")[0].split("<")[0] for r in pyproject["project"]["optional-dependencies"]["train"]}
    assert {dist for dist, _ in EXTRAS.values()} == declared
    assert INSTALL == INSTALL_LINE


def test_require_names_the_extra(hide):
    hide("yaml")
    with pytest.raises(MissingExtraError) as e:
        require("yaml")
    assert str(e.value) == f"training needs pyyaml (run configs), which the training extras bring: {INSTALL_LINE}"
    assert isinstance(e.value, NetspecError)


def test_importing_training_without_an_extra_raises_the_named_error(hide):
    # (the modules are imported afresh, so their MissingExtraError is a fresh class: match the root)
    hide("numpy")
    with pytest.raises(NetspecError, match=r"^training needs numpy .*pip install 'netspec-nn\[train\]'$") as e:
        importlib.import_module("netspec.train.trainer")
    assert type(e.value).__name__ == "MissingExtraError"
    hide("yaml")
    with pytest.raises(NetspecError, match="^training needs pyyaml"):
        importlib.import_module("netspec.train.config")


def test_a_broken_extra_is_not_hidden(hide, monkeypatch):
    # the extra imports, but something it needs does not: that is the environment's error, shown as is
    class Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "yaml":
                raise ModuleNotFoundError("No module named '_yaml_core'", name="_yaml_core")
            return None

    hide()
    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken()] + sys.meta_path)
    with pytest.raises(ModuleNotFoundError, match="_yaml_core"):
        require("yaml")


def test_cli_prints_one_line(hide, tmp_path, capsys):
    spec = tmp_path / "mlp.nn"
    spec.write_text("model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n")
    hide("sklearn")
    assert netspec_main(["train", str(spec), "--data", "digits", "--steps", "1", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: training needs scikit-learn (the digits data), which the training extras bring: {INSTALL_LINE}\n"


def test_a_missing_tensorboard_is_one_line_naming_its_own_extra(hide, tmp_path, capsys):
    spec = tmp_path / "mlp.nn"
    spec.write_text("model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n")
    hide("tensorboard")
    assert netspec_main(["train", str(spec), "--data", "digits", "--steps", "1", "--log", "tensorboard",
                         "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err == ("error: --log tensorboard needs tensorboard, which the tensorboard extra "
                                       "brings: pip install 'netspec-nn[tensorboard]'\n")
    assert not (tmp_path / "r").exists()  # it failed before writing anything


def test_the_optional_extras_are_declared():
    import tomllib
    from pathlib import Path

    from netspec.train.extras import OPTIONAL

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for dist, _, extra in OPTIONAL.values():
        assert any(r.startswith(dist) for r in extras[extra]) and extra in extras["dev"][0]


def test_help_needs_no_extra(hide, capsys):
    hide("yaml", "numpy", "sklearn", "matplotlib", "PIL")
    with pytest.raises(SystemExit) as e:
        netspec_main(["train", "--help"])
    assert e.value.code == 0 and "--resume DIR" in capsys.readouterr().out
