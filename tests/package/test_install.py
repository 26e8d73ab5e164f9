"""netspec as a user installs it: the wheel's contents, and the commands run from a folder
outside the repository by the installed `netspec` (no source tree on the path)."""
from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"netspec": "netspec", "dsl": "netspec.dsl", "compiler": "netspec.compiler", "train": "netspec.train",
          "stdlib": "netspec.stdlib"}


def test_the_wheel_holds_one_top_level_package_and_every_subpackage(built_wheel):
    with zipfile.ZipFile(built_wheel) as z:
        names = z.namelist()
        (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        assert {n.split("/")[0] for n in names} == {"netspec", dist_info}
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
        metadata = z.read(f"{dist_info}/METADATA").decode()
    # every package folder of the tree is in the wheel, under its netspec name
    for folder, package in STAGES.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            assert "/".join([*package.split("."), *rel.parts, "__init__.py"]) in names, f"{init} is not packaged"
    for data in ("netspec/dsl/grammar.lark", "netspec/stdlib/gpt2.nn", "netspec/stdlib/resnet.nn",
                 "netspec/stdlib/unet.nn", "netspec/stdlib/lenet.nn", "netspec/stdlib/alexnet.nn"):
        assert data in names
    assert "netspec = netspec.cli:main" in entry_points
    assert "Name: netspec-nn" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: torch>=2.4") for line in requires)
    # training-only dependencies come with the extra, never with the core install
    for name in ("scikit-learn", "matplotlib", "pyyaml"):
        (line,) = [r for r in requires if r.split()[1].startswith(name)]
        assert 'extra == "train"' in line


def sh(cmd: list[str], env, cwd, ok=True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if ok:
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture
def away(tmp_path):
    """A working folder outside the repository."""
    assert ROOT not in tmp_path.parents
    return tmp_path


def test_the_installed_netspec_is_the_wheel_not_the_tree(user_env, away):
    r = sh(["python", "-c", "import netspec, netspec.dsl, netspec.train; "
            "print(netspec.__file__); print(netspec.dsl.__file__); print(netspec.__version__)"], user_env, away)
    files = r.stdout.split()[:2]
    venv = Path(user_env["VIRTUAL_ENV"])
    assert all(Path(f).is_relative_to(venv) for f in files), files
    assert not any(Path(f).is_relative_to(ROOT / "dsl") for f in files)


def test_stdlib_models_by_name_from_any_folder(user_env, away):
    r = sh(["netspec", "models"], user_env, away)
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "124,439,808" in lines["GPT2"] and "25,557,032" in lines["ResNet50"] and "61,706" in lines["LeNet5"]
    rows = json.loads(sh(["netspec", "models", "--json"], user_env, away).stdout)
    assert {r["name"]: r["params"] for r in rows}["UNet"] == 31_030_658

    r = sh(["netspec", "check", "gpt2"], user_env, away)
    assert r.stdout.strip() == ("gpt2: model GPT2 ok: inputs idx int64[1, 1024]; heads logits[1, 1024, 50257] (lm); "
                                "124,439,808 parameters")
    r = sh(["python", "-m", "netspec", "check", "resnet", "--model", "ResNet50"], user_env, away)
    assert "model ResNet50 ok" in r.stdout and "25,557,032 parameters" in r.stdout

    sh(["netspec", "render", "resnet", "--model", "ResNet50", "-o", "x.svg"], user_env, away)
    assert (away / "x.svg").read_text().lstrip().startswith(("<?xml", "<svg"))

    summary = json.loads(sh(["netspec", "summary", "unet", "--json"], user_env, away).stdout)
    assert summary["model"] == "UNet" and summary["params"] == 31_030_658

    r = sh(["netspec", "check", "resnt"], user_env, away, ok=False)
    assert r.returncode == 1 and "did you mean 'resnet'?" in r.stderr and "internal error" not in r.stderr


def test_a_file_in_the_current_folder_wins_over_the_stdlib(user_env, away):
    (away / "gpt2.nn").write_text("model Mine():\n    input x: float[B=1, 3]\n    fc: Linear(3, 2)\n    head y\n")
    r = sh(["netspec", "check", "gpt2"], user_env, away)
    assert "model Mine ok" in r.stdout and "8 parameters" in r.stdout
    r = sh(["netspec", "check", "stdlib/gpt2.nn"], user_env, away)  # the README's spelling still names the stdlib
    assert "model GPT2 ok" in r.stdout


def test_ejected_code_runs_without_netspec(user_env, away):
    sh(["netspec", "compile", "lenet", "-o", "m.py"], user_env, away)
    script = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'netspec':\n"
        "            raise ImportError('netspec is hidden')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import torch, m\n"
        "model = m.LeNet5().eval()\n"
        "print(tuple(model(torch.zeros(2, 1, 32, 32)).shape), sum(p.numel() for p in model.parameters()))\n"
        "print(any(k.startswith('netspec') for k in sys.modules))\n")
    r = sh(["python", "-c", script], user_env, away)
    assert r.stdout.split("\n")[:2] == ["(2, 10) 61706", "False"]


def test_checking_imports_no_training_code(user_env, away):
    script = ("import sys\nfrom netspec.cli import main\nmain(['check', 'gpt2'])\n"
              "print(sorted({m.split('.')[0] if not m.startswith('netspec') else '.'.join(m.split('.')[:2])\n"
              "       for m in sys.modules if m.startswith(('netspec.train', 'sklearn', 'matplotlib', 'yaml'))}))\n")
    r = sh(["python", "-c", script], user_env, away)
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_train_eval_sample_from_any_folder(user_env, away):
    sh(["netspec", "train", "lenet", "--data", "digits", "--steps", "20", "--out", "lenet-run", "--seed", "0"],
       user_env, away)
    res = json.loads(sh(["netspec", "eval", "lenet-run", "--json"], user_env, away).stdout)
    assert 0.0 <= res["accuracy"] <= 1.0 and res["loss"] > 0
    sh(["netspec", "train", "gpt2", "--set", "n_layer=1", "n_head=2", "n_embd=32", "block_size=32",
        "vocab_size=256", "--data", "pycode", "--steps", "20", "--batch-size", "8", "--out", "lm-run", "--seed", "0"],
       user_env, away)
    r = sh(["netspec", "sample", "lm-run", "--prompt", "def ", "--tokens", "20", "--seed", "0"], user_env, away)
    assert r.stdout.startswith("def ") and len(r.stdout.encode()) >= 4


def test_the_package_imports_no_torch_until_asked(user_env, away):
    r = sh(["python", "-c", "import json, sys, netspec; print('torch' in sys.modules); "
            "print(json.dumps(sorted(n for n in dir(netspec) if not n.startswith('_'))))"], user_env, away)
    lines = r.stdout.splitlines()
    assert lines[0] == "False"
    assert json.loads(lines[1]) == ["NetspecError", "analyze", "build", "eject", "load_weights", "train"]
    r = sh(["python", "-c", "import sys, netspec; netspec.train; print('torch' in sys.modules, callable(netspec.train))"],
           user_env, away)
    assert r.stdout.split() == ["False", "True"]  # the training package: callable, and still lazy


@pytest.mark.parametrize("argv", [["--debug", "check", "resnt"], ["check", "resnt", "--debug"]])
def test_debug_before_or_after_the_command(user_env, away, argv):
    r = sh(["netspec", *argv], user_env, away, ok=False)
    assert r.returncode == 1 and "did you mean 'resnet'?" in r.stderr


def test_python_dash_m_is_the_command(user_env, away):
    r = sh(["python", "-m", "netspec", "--version"], user_env, away)
    assert r.stdout.startswith("netspec ") and "unknown" not in r.stdout
