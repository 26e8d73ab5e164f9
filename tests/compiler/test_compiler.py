"""The compiler: GraphModules from specs, readable code, spans on nodes, torch.compile,
and ejected standalone PyTorch that matches netspec.build with the same weights."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import fx

import netspec
from netspec.compiler.eject import eject

ROOT = Path(__file__).resolve().parents[2]
STDLIB = ROOT / "stdlib"

# every model of every stdlib file, at sizes that keep the test quick on 2 cores
STDLIB_CASES = [
    ("lenet.nn", "LeNet5", {}, {}),
    ("lenet.nn", "LeNet5", {"activation": "relu", "pool": "max", "num_classes": 7}, {}),
    ("alexnet.nn", "AlexNet", {}, {"x": (1, 3, 224, 224)}),
    ("resnet.nn", "ResNet18", {}, {"x": (2, 3, 64, 64)}),
    ("resnet.nn", "ResNet34", {}, {"x": (1, 3, 64, 64)}),
    ("resnet.nn", "ResNet50", {}, {"x": (2, 3, 64, 64)}),
    ("resnet.nn", "ResNet101", {}, {"x": (1, 3, 64, 64)}),
    ("resnet.nn", "ResNet152", {}, {"x": (1, 3, 64, 64)}),
    ("unet.nn", "UNet", {}, {"x": (1, 1, 188, 188)}),
    ("gpt2.nn", "GPT2", {}, {"idx": (1, 16)}),
]


def _inputs(model, shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in model.netspec.inputs:
        shape = shapes.get(i.name, i.shape)
        if i.dtype.startswith("int"):
            out.append(torch.randint(0, 50, shape, generator=g))
        else:
            out.append(torch.randn(shape, generator=g))
    return out


def test_build_returns_graphmodule_with_info_and_spans():
    m = netspec.build(STDLIB / "lenet.nn")
    assert isinstance(m, fx.GraphModule)
    assert m.netspec.name == "LeNet5" and m.netspec.heads[0].task == "classify"
    m.graph.lint()
    spans = [n.meta["span"] for n in m.graph.nodes if n.op == "call_module"]
    assert spans and all(str(s).startswith(str(STDLIB / "lenet.nn")) for s in spans)


def test_readable_code_uses_spec_names():
    m = netspec.build(STDLIB / "gpt2.nn", n_layer=2, n_embd=64, n_head=4, vocab_size=100, block_size=32)
    code = m.code
    assert "self.transformer.wte(idx)" in code and "self.lm_head(" in code
    attn = m.transformer.h.get_submodule("0").attn.code
    assert "self.c_attn(" in attn and "self.c_proj(" in attn


def test_torch_compile_matches_eager_on_cpu():
    torch.manual_seed(0)
    m = netspec.build(STDLIB / "lenet.nn").eval()
    x = torch.randn(4, 1, 32, 32)
    eager = m(x)
    compiled = torch.compile(m)
    torch.testing.assert_close(compiled(x), eager, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("file,model,params,shapes", STDLIB_CASES,
                         ids=[f"{c[1]}{'-' + '-'.join(map(str, c[2].values())) if c[2] else ''}" for c in STDLIB_CASES])
def test_ejected_code_runs_without_netspec(file, model, params, shapes, tmp_path):
    """model.py imports in a fresh interpreter where netspec is not importable and gives the
    outputs netspec.build gives with the same state_dict (train-mode-free: eval)."""
    torch.manual_seed(0)
    built = netspec.build(STDLIB / file, model, input_shapes=shapes, **params).eval()
    code = eject(STDLIB / file, model, params)
    (tmp_path / "model.py").write_text(code)
    xs = _inputs(built, shapes)
    with torch.no_grad():
        want = built(*xs)
    torch.save({"state": built.state_dict(), "inputs": xs}, tmp_path / "data.pt")
    script = (
        "import sys, torch, importlib.util, importlib.abc\n"
        # netspec is installed in this venv: make its packages unimportable, as on a machine without it
        "class NoNetspec(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'netspec':\n"
        "            raise ImportError(name + ' is netspec')\n"
        "sys.meta_path.insert(0, NoNetspec())\n"
        "try:\n    import netspec\n    sys.exit('netspec importable: the test is not isolated')\n"
        "except ImportError:\n    pass\n"
        "spec = importlib.util.spec_from_file_location('model', 'model.py')\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        f"m = getattr(mod, {model!r})().eval()\n"
        "d = torch.load('data.pt', weights_only=True)\n"
        "m.load_state_dict(d['state'], strict=True)\n"
        "with torch.no_grad():\n    out = m(*d['inputs'])\n"
        "torch.save(out, 'out.pt')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.testing.assert_close(got, want)
    assert "import netspec" not in code and "from netspec.compiler" not in code and "from netspec.dsl" not in code


def test_eject_shares_one_class_per_distinct_block():
    code = eject(STDLIB / "gpt2.nn", None, {"n_layer": 3})
    assert code.count("class Block(nn.Module)") == 1
    assert "self.lm_head.weight = self.transformer.wte.weight" in code


def test_shape_errors_never_allocate_or_trace(tmp_path):
    spec = tmp_path / "bad.nn"
    spec.write_text("model M():\n    input x: float[B=1, 2048]\n    fc: Linear(512, 1000)\n    head y\n")
    from netspec.dsl.errors import NetspecError
    with pytest.raises(NetspecError) as e:
        netspec.build(spec)
    (d,) = e.value.diagnostics
    assert (d.span.line, d.span.col) == (3, 5)
    assert d.message == "Linear(512, 1000) expects last dim 512, got [1, 2048]"


def test_gpt2_xl_is_counted_on_meta_without_weights():
    a = netspec.analyze(STDLIB / "gpt2.nn", overrides={"n_layer": 48, "n_head": 25, "n_embd": 1600})
    assert a.num_params == 1_557_611_200
    assert next(a.module.parameters()).device.type == "meta"
    assert a.info.heads[0].shape == (1, 1024, 50257)


def test_causal_multihead_attention_masks_the_future(tmp_path):
    spec = tmp_path / "m.nn"
    spec.write_text("model M(d=8):\n    input x: float[B=2, T=5, d]\n"
                    "    attn: MultiheadAttention(d, 2, is_causal=true)\n    head y\n")
    m = netspec.build(spec).eval()
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    ref.load_state_dict(m.attn.state_dict())
    x = torch.randn(2, 5, 8)
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    torch.testing.assert_close(m(x), ref(x, x, x, attn_mask=future, need_weights=False)[0])
    x2 = x.clone()
    x2[:, -1] += 1.0  # changing the last position cannot change earlier outputs
    torch.testing.assert_close(m(x2)[:, :-1], m(x)[:, :-1])
    assert m.attn.batch_first


@pytest.mark.parametrize("file,model,published_gmacs", [("resnet.nn", "ResNet18", 1.81), ("resnet.nn", "ResNet50", 4.09),
                                                         ("alexnet.nn", "AlexNet", 0.71)])
def test_summary_macs_match_published_counts(file, model, published_gmacs):
    """Multiply-accumulates per 224x224 image, as the papers' FLOP tables count them (convs + linears)."""
    from netspec.compiler.summary import summarize
    s = summarize(netspec.analyze(STDLIB / file, model))
    assert round(s["macs"] / 1e9, 2) == published_gmacs
    assert s["params"] == sum(r["params"] for r in s["layers"] if r["depth"] == 0)


def test_runtime_failures_are_traced_back_to_the_spec():
    """Errors only real data reveals (here a sequence longer than block_size) point at a spec line."""
    from netspec.compiler.shapes import locate_failure
    m = netspec.build(STDLIB / "gpt2.nn", n_layer=1, n_embd=32, n_head=2, vocab_size=50, block_size=16)
    ok = torch.randint(0, 50, (1, 16))
    assert locate_failure(m, ok) is None
    err = locate_failure(m, torch.randint(0, 50, (1, 20)))
    (d,) = err.diagnostics
    src = (STDLIB / "gpt2.nn").read_text().splitlines()
    assert src[d.span.line - 1].strip().startswith("wpe: Embedding(")
    assert d.message == "Embedding(16, 32) has rows 0..15, got indices 0..19 in [20]"
