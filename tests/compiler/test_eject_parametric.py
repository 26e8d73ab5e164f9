"""Ejected code takes the model's parameters: sizes computed from them as the spec computes
them, repeats built in loops, and the parameters that choose layers (a branch, a flag)
refused with the command that generates their file. Each setting below is compared with
`build` at that setting: state_dict keys, shapes and outputs."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

import netspec
from netspec.compiler import eject as eject_module
from netspec.compiler.eject import eject
from netspec.compiler.passes import attention, identity

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path, code: str, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(str(tmp_path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _fixed(code: str, cls: str) -> tuple:
    """The parameters class `cls` refuses other values of (its _generated_for guard)."""
    m = re.search(rf"_generated_for\({cls!r},\n(?:.*\n){{2}}\s+(\(.*?\))", code)
    return eval(m.group(1)) if m else ()  # a tuple of names, written by netspec


def _same(ejected, built, x, train=False):
    assert [(k, tuple(t.shape)) for k, t in ejected.state_dict().items()] == \
        [(k, tuple(t.shape)) for k, t in built.state_dict().items()]
    ejected.load_state_dict(built.state_dict())
    ejected.train(train)
    built.train(train)
    torch.manual_seed(0)
    a = ejected(x)
    torch.manual_seed(0)
    b = built(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


SETTINGS = [
    {"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 50, "block_size": 16},
    {"n_layer": 3, "n_head": 4, "n_embd": 64, "vocab_size": 70, "block_size": 8},
    {"n_layer": 2, "n_head": 1, "n_embd": 24, "vocab_size": 31, "block_size": 12, "dropout": 0.25},
]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    code = eject(ROOT / "stdlib/gpt2.nn")
    return code, _load(tmp_path_factory.mktemp("gpt2"), code, "gpt2")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_gpt2_ejected_once_builds_every_size(gpt2, setting):
    code, module = gpt2
    torch.manual_seed(0)
    x = torch.randint(0, setting["vocab_size"], (2, setting["block_size"]))
    built = netspec.build("gpt2", **setting)
    _same(module.GPT2(**setting), built, x)
    _same(module.GPT2(**setting), built, x, train=True)  # dropout where the spec has it, drawn alike


def test_gpt2_only_bias_is_fixed(gpt2):
    code, module = gpt2
    assert _fixed(code, "GPT2") == ("bias",)  # a flag that adds layers' biases and their init lines
    assert _fixed(code, "Block") == ("bias",)
    assert "def __init__(self, vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, " \
           "dropout=0.0, bias=True):" in code
    assert "self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=True)" in code
    assert "nn.init.normal_(self.c_proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))" in code
    assert "q.view(B, T, self.n_head, self.n_embd // self.n_head)" in code
    assert "scale=1.0 / math.sqrt(self.n_embd // self.n_head)" in code
    with pytest.raises(ValueError, match=r"^GPT2 was generated for \{'bias': True\}; for \{'bias': False\} "):
        module.GPT2(n_layer=1, bias=False)
    with pytest.raises(ValueError, match=r"^Block was generated for \{'bias': True\}; \{'bias': False\} would "
                                         r"change its layers: compile the spec again"):
        module.Block(n_embd=8, n_head=2, n_layer=1, dropout=0.0, bias=False)


SPEC = """\
model M(d=8, n=2, wide=4, act="relu", p=0.0):
    assert d % 2 == 0, "d must be even"
    input x: float[B=2, d]
    h:
        repeat n:
            Linear(d, d)
    if wide > 2:
        up: Linear(d, d * wide)
    else:
        up: Linear(d, d)
    drop: Dropout(p)
    head y
"""


def test_what_decides_is_fixed_and_what_checks_is_not(tmp_path):
    spec = tmp_path / "m.nn"
    spec.write_text(SPEC)
    code = eject(spec)
    module = _load(tmp_path, code, "m")
    # the if decides `up`; a string cannot be an expression; the assert only checks d
    assert _fixed(code, "M") == ("wide", "act")
    assert "h=nn.ModuleList([nn.Linear(d, d) for _ in range(n)])" in code.replace("self.h = ", "h=")
    for setting in ({"d": 4, "n": 1}, {"d": 6, "n": 3, "p": 0.5}, {"n": 0}):
        _same(module.M(**setting), netspec.build(spec, **setting), torch.randn(2, setting.get("d", 8)), train=True)
    with pytest.raises(ValueError, match=r"^M was generated for \{'wide': 4, 'act': 'relu'\}; for \{'wide': 1\} "
                                         r"generate it again: netspec compile .*m.nn --model M --set wide=1$"):
        module.M(wide=1)


def test_a_loop_over_range_fixes_its_count(tmp_path):
    spec = tmp_path / "f.nn"
    spec.write_text("model F(n=2, d=4):\n    input x: float[B=1, d]\n    for i in range(n):\n"
                    "        fc{i}: Linear(d, d)\n    head y\n")
    code = eject(spec)
    assert _fixed(code, "F") == ("n",)  # the layers fc0, fc1 are named by the loop
    module = _load(tmp_path, code, "f")
    _same(module.F(d=5), netspec.build(spec, d=5), torch.randn(1, 5))


def test_what_the_trace_misses_the_second_generation_catches(tmp_path, monkeypatch):
    """A pass that fires for some values only (dropout p = 0 skipped, as the optimizer did
    before it learned about parameters) writes code that holds for p = 0 alone; the
    trace sees no decision, generating again with p = 0.5 sees other code: p is fixed."""
    monkeypatch.setattr(identity, "_is_identity", lambda m: type(m) in identity._DROPOUTS and m.p == 0)
    spec = tmp_path / "m.nn"
    spec.write_text(SPEC)
    assert _fixed(eject(spec), "M") == ("wide", "act", "p")
    monkeypatch.undo()
    assert _fixed(eject(spec), "M") == ("wide", "act")


def test_one_by_one_when_together_fails_and_past_what_the_spec_refuses(tmp_path, monkeypatch):
    """With p fixed by the leaky pass above, changing every parameter at once gives other
    code; then each is changed alone: d (12 -> 24) is free; h's first moves (8, 5) leave
    d % h != 0, which the spec refuses, and the next one (12) proves it free."""
    monkeypatch.setattr(identity, "_is_identity", lambda m: type(m) in identity._DROPOUTS and m.p == 0)
    tried = []
    lowered = eject_module._lowered
    monkeypatch.setattr(eject_module, "_lowered",
                        lambda s, m, o, e, opt: tried.append(dict(o or {})) or lowered(s, m, o, e, opt))
    spec = tmp_path / "h.nn"
    spec.write_text("model H(d=12, h=4, p=0.0):\n    assert d % h == 0, \"h divides d\"\n    input x: float[B=1, d]\n"
                    "    fc: Linear(d, d // h)\n    drop: Dropout(p)\n    head y\n")
    code = eject(spec)
    assert tried == [{}, {"d": 24, "h": 8, "p": 0.5}, {"d": 24}, {"h": 8}, {"h": 5}, {"h": 12}, {"p": 0.5}]
    assert _fixed(code, "H") == ("p",)
    assert "self.fc = nn.Linear(d, d // h)" in code
    module = _load(tmp_path, code, "h")
    _same(module.H(d=10, h=5), netspec.build(spec, d=10, h=5), torch.randn(1, 10))
