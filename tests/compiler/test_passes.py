"""The optimization passes (compiler/passes/): each fires where it can prove the rewrite
computes what the spec wrote, leaves everything else as written, and the optimized graph
computes what the literal one does."""
from __future__ import annotations

import math
import operator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import fx
from torch.testing import assert_close

import netspec
from netspec.compiler import ops as netspec_ops
from netspec.compiler.passes import PASSES, fuse_attention, remove_identity_layers, rewrites
from netspec.compiler.passes import masks
from netspec.compiler.passes.symbolic import Size, infer

ROOT = Path(__file__).resolve().parents[2]
SMALL_GPT2 = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100)
FUSED = (F.scaled_dot_product_attention, netspec_ops.attention)

# One attention block; {scores} computes the attention weights `w` from q, k (B, nh, T, hs).
TEMPLATE = """
block Attn(d, heads, p=0.0):
    input x: [B, T, C]
    qkv: Linear(d, 3 * d)
    q, k, v = split(_, d, dim=2)
    hs = d // heads
    q = q.view(B, T, heads, hs).transpose(1, 2)
    k = k.view(B, T, heads, hs).transpose(1, 2)
    v = v.view(B, T, heads, hs).transpose(1, 2)
{scores}
    y = w @ v
    transpose(1, 2); reshape(B, T, C)

model M(d=64, heads=4, p=0.0):
    input x: float[B=2, T=8, d]
    attn: Attn(d, heads, p)
    head y
"""


def attention_spec(scores: str) -> str:
    return TEMPLATE.format(scores="\n".join("    " + line for line in scores.strip().splitlines()))


def pair(source, model=None, seed=0, **params):
    """(literal, optimized) builds of one spec with the same weights."""
    torch.manual_seed(seed)
    literal = netspec.build(source, model, optimize=False, **params)
    optimized = netspec.build(source, model, **params)
    optimized.load_state_dict(literal.state_dict())
    return literal, optimized


def calls(model, targets) -> list[fx.Node]:
    """Every node of every distinct graph in model calling one of `targets`."""
    seen, out = set(), []
    for m in model.modules():
        if isinstance(m, fx.GraphModule) and id(m.graph) not in seen:
            seen.add(id(m.graph))
            out += [n for n in m.graph.nodes if n.op in ("call_function", "call_method") and n.target in targets]
    return out


class _Shapes(fx.Interpreter):
    """Runs a model node by node, recording the shape of every tensor any node makes."""

    def __init__(self, gm, shapes):
        super().__init__(gm)
        self.shapes = shapes

    def run_node(self, n):
        out = super().run_node(n)
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out

    def call_module(self, target, args, kwargs):
        sub = self.fetch_attr(target)
        if isinstance(sub, fx.GraphModule):
            return _Shapes(sub, self.shapes).run(*args)
        return super().call_module(target, args, kwargs)


def tensor_shapes(model, *inputs) -> list[tuple]:
    shapes: list = []
    with torch.no_grad():
        _Shapes(model, shapes).run(*inputs)
    return shapes


# ---- the attention pass fires on the specs the notes write ----
@pytest.mark.parametrize("source, model, params, T, blocks", [
    (ROOT / "stdlib/gpt2.nn", None, SMALL_GPT2, 24, 2),
    (ROOT / "specs/gpt_outline.nn", None, {"layers": 3}, 24, 3),
    (ROOT / "specs/attention.nn", "Primitives", {}, 24, 1),
], ids=["gpt2", "gpt_outline", "attention"])
def test_attention_is_fused_and_no_TxT_tensor_is_made(source, model, params, T, blocks):
    literal, optimized = pair(source, model, **params)
    attention_blocks = [m for m in optimized.modules() if "Attention" in type(m).__name__]
    assert len(attention_blocks) == blocks
    for block in attention_blocks:  # one fused call each, nothing of the T x T pattern left
        nodes = list(block.graph.nodes)
        assert sum(n.target in FUSED for n in nodes) == 1
        assert not [n for n in nodes if n.target in (operator.matmul, torch.softmax, torch.masked_fill,
                                                     netspec_ops.causal_mask, torch.tril, torch.ones)]
    first = literal.netspec.inputs[0]
    x = torch.randint(0, 50, (2, T)) if first.dtype == "int64" else torch.randn(2, T, first.shape[-1])
    assert any(s[-2:] == (T, T) for s in tensor_shapes(literal, x))  # the literal graph makes them...
    assert not any(s[-2:] == (T, T) for s in tensor_shapes(optimized, x))  # ...the optimized one does not
    literal.eval(), optimized.eval()
    assert_close(optimized(x), literal(x))


def test_rewrites_name_the_spec_lines():
    _, m = pair(ROOT / "stdlib/gpt2.nn", **SMALL_GPT2)
    fused = [r for r in rewrites(m) if r.pass_name == "fuse_attention"]
    assert len(fused) == 1  # one per distinct block: all layers share the CausalSelfAttention graph
    r = fused[0]
    assert (r.span.line, r.block) == (31, "CausalSelfAttention") and str(r.span).endswith("gpt2.nn:31:12")
    assert r.what == ("q @ k.T, * 0.25, causal mask, softmax(dim=-1), attn_dropout(p=0.0), @ v -> "
                      "scaled_dot_product_attention(is_causal=True, scale=0.25)")


def test_netspec_debug_lists_the_rewrites(monkeypatch, capsys):
    monkeypatch.setenv("NETSPEC_DEBUG", "1")
    netspec.build(ROOT / "specs/attention.nn", "Primitives")
    err = capsys.readouterr().err
    assert "# optimizer: 1 rewrite(s):" in err
    assert "specs/attention.nn:17:11: fuse_attention: q @ k.T, * 0.25, causal mask, softmax(dim=-1), " \
           "attn_dropout(p=0.1), @ v -> attention(is_causal=True, scale=0.25, dropout=attn_dropout)" in err


def test_optimize_false_gives_the_literal_graph():
    literal, optimized = pair(ROOT / "stdlib/gpt2.nn", **SMALL_GPT2)
    assert rewrites(literal) == [] and not calls(literal, FUSED)
    assert len(calls(literal, (torch.softmax,))) == 1 and len(calls(optimized, FUSED)) == 1
    assert list(literal.state_dict()) == list(optimized.state_dict())
    assert [n for n, _ in literal.named_modules()] == [n for n, _ in optimized.named_modules()]
    # check, summary and render read the analysis: the spec as written
    analysis = netspec.analyze(ROOT / "stdlib/gpt2.nn", overrides=SMALL_GPT2)
    assert len(calls(analysis.module, (torch.softmax,))) == 1 and not calls(analysis.module, FUSED)
    assert "transformer.h.0.attn.attn_dropout" in analysis.shapes  # a row of `netspec summary`


# ---- the forms it recognises ----
@pytest.mark.parametrize("scores, how", [
    ("w = softmax(causal_mask(q @ k.T * (1.0 / sqrt(hs))), dim=-1)", dict(is_causal=True, scale=0.25)),
    ("s = q @ k.T / sqrt(hs); masked_fill(tril(ones(T, T)) == 0, -inf); softmax(dim=-1)\nw = _",
     dict(is_causal=True, scale=0.25)),
    ("s = q @ k.T / sqrt(hs); masked_fill(triu(ones(T, T), diagonal=1) == 1, -inf); softmax(dim=-1)\nw = _",
     dict(is_causal=True, scale=0.25)),
    ("w = softmax(q @ k.T / sqrt(hs) + triu(full((T, T), -inf), diagonal=1), dim=-1)",
     dict(is_causal=True, scale=0.25)),
    ("w = softmax(0.5 * (q @ k.T), dim=-1)", dict(scale=0.5)),
    ("w = softmax(causal_mask(q @ k.T) * 0.5, dim=-1)", dict(is_causal=True, scale=0.5)),  # scale after mask
    ("w = softmax(q @ k.transpose(-1, -2), dim=-1)", dict(scale=1.0)),  # no scale: 1, not 1/sqrt(hs)
    ("w = Softmax(dim=-1)(q @ k.transpose(2, 3) / 2)", dict(scale=0.5)),  # rank 4 is known
    ("w = softmax(q @ k.T, dim=3)", dict(scale=1.0)),
], ids=["causal_mask", "masked_fill_tril", "masked_fill_triu", "additive", "scale_left", "scale_after_mask",
        "no_scale", "softmax_module", "softmax_dim3"])
def test_attention_forms_that_fuse(scores, how):
    literal, optimized = pair(attention_spec(scores))
    (node,) = calls(optimized, FUSED)
    assert node.target is F.scaled_dot_product_attention
    assert {k: v for k, v in node.kwargs.items()} == how
    x = torch.randn(3, 7, 64)
    for mode in (True, False):
        literal.train(mode), optimized.train(mode)
        assert_close(optimized(x), literal(x))


@pytest.mark.parametrize("scores", [
    "w = softmax(q @ k.T / sqrt(hs), dim=1)",  # softmax over another dim
    "w = softmax(q @ k.T / sqrt(hs), dim=2)",
    "w = softmax(masked_fill(q @ k.T, tril(ones(T, T), diagonal=-1) == 0, -inf), dim=-1)",  # not causal
    "w = softmax(masked_fill(q @ k.T, triu(ones(T, T), diagonal=2) == 1, -inf), dim=-1)",  # sees one ahead
    "w = softmax(masked_fill(q @ k.T, tril(ones(T, T)) == 0, -1e9), dim=-1)",  # close to -inf, not equal
    "w = softmax(q @ k.T + triu(full((T, T), -1e4), diagonal=1), dim=-1)",
    "w = softmax(q @ k.T / size(q, -1), dim=-1)",  # a scale known only at run time
    "w = softmax(causal_mask(q @ k.T) * -0.5, dim=-1)",  # a negative scale after -inf makes +inf
    "w = softmax(causal_mask(q @ k.T, value=-10000.0), dim=-1)",
    "w = softmax(q @ k.T, dim=-1) * 2",  # not softmax @ v
    "w = exp(q @ k.T)",
], ids=["dim1", "dim2", "strict_tril", "one_ahead", "minus_1e9", "additive_finite", "runtime_scale",
        "negative_scale", "finite_causal_value", "scaled_weights", "no_softmax"])
def test_attention_forms_left_alone(scores):
    literal, optimized = pair(attention_spec(scores))
    assert not calls(optimized, FUSED)
    assert [n.target for n in optimized.attn.graph.nodes] == [n.target for n in literal.attn.graph.nodes]


def test_weights_used_twice_are_left_alone():
    spec = """
block Attn(d, heads):
    input x: [B, T, C]
    qkv: Linear(d, 3 * d)
    q, k, v = split(_, d, dim=2)
    hs = d // heads
    q = q.view(B, T, heads, hs).transpose(1, 2)
    k = k.view(B, T, heads, hs).transpose(1, 2)
    v = v.view(B, T, heads, hs).transpose(1, 2)
    w = softmax(causal_mask(q @ k.T / sqrt(hs)), dim=-1)
    output y = w @ v
    output weights = w

model M(d=32, heads=4):
    input x: float[B=2, T=8, d]
    y, w = Attn(d, heads)(x)
    head out = y
    head weights = w
"""
    literal, optimized = pair(spec)
    assert not calls(optimized, FUSED)


def test_cross_attention_mask_of_the_wrong_size_is_left_alone():
    spec = """
block Cross(d):
    input x: [B, T, C]
    input mem: [B, S, C]
    q = x.view(B, 1, T, C)
    k = mem.view(B, 1, S, C)
    w = softmax(masked_fill(q @ k.T, tril(ones(T, T)) == 0, -inf), dim=-1)
    output y = w @ k

model M(d=16):
    input x: float[B=2, T=5, d]
    input mem: float[B=2, S=5, d]
    Cross(d)(x, mem)
    head y
"""
    literal, optimized = pair(spec)
    assert not calls(optimized, FUSED)  # the mask is T x T, the scores T x S: equal only when T == S


def test_given_masks_are_passed_to_the_kernel():
    spec = """
block Attn(d):
    input x: [B, T, C]
    input keep: [T, T]
    input bias: [T, T]
    q = x.view(B, 1, T, C)
    a = softmax(masked_fill(q @ q.T, keep == 0, -inf), dim=-1) @ q
    b = softmax(q @ q.T * 0.5 + bias, dim=-1) @ q
    output y = a + b

model M(d=16):
    input x: float[B=2, T=6, d]
    input keep: float[T=6, T=6]
    input bias: float[T=6, T=6]
    Attn(d)(x, keep, bias)
    head y
"""
    literal, optimized = pair(spec)
    fused = calls(optimized, FUSED)
    assert len(fused) == 2 and all("attn_mask" in n.kwargs and "is_causal" not in n.kwargs for n in fused)
    x, keep, bias = torch.randn(2, 6, 16), (torch.rand(6, 6) > 0.5).float(), torch.randn(6, 6)
    keep.fill_diagonal_(1)  # no row masked entirely (the literal makes NaN there, the kernel 0)
    assert_close(optimized(x, keep, bias), literal(x, keep, bias))


def test_dropout_on_attention_weights_is_the_same_distribution():
    """Training mode draws different masks: compare mean and variance over many draws."""
    literal, optimized = pair(ROOT / "specs/attention.nn", "Primitives", p=0.3)
    (node,) = calls(optimized, FUSED)
    assert node.target is netspec_ops.attention and node.kwargs["dropout"].target == "attn_dropout"
    x = torch.randn(4, 16, 64)
    literal.eval(), optimized.eval()
    assert_close(optimized(x), literal(x))  # eval: exactly, no dropout
    literal.train(), optimized.train()
    torch.manual_seed(0)
    with torch.no_grad():
        a = torch.stack([literal(x) for _ in range(300)])
        b = torch.stack([optimized(x) for _ in range(300)])
    expected = literal.eval()(x)
    # the mean over draws approaches the eval output alike; the spread between draws is alike
    err_a, err_b = (a.mean(0) - expected).abs().mean(), (b.mean(0) - expected).abs().mean()
    assert err_b < 1.3 * err_a + 1e-3, (err_a, err_b)
    ratio = (b.var(0).mean() / a.var(0).mean()).item()
    assert 0.9 < ratio < 1.1, ratio
    assert not torch.equal(b[0], b[1])  # it does drop in training


# ---- pass hygiene ----
def test_passes_are_pure_and_idempotent():
    literal, _ = pair(ROOT / "specs/attention.nn", "Primitives")
    block = literal.attn
    before = block.code
    out = fuse_attention(block)
    assert out is not block and block.code == before  # the input module is untouched
    assert fuse_attention(out) is out  # nothing left to fuse: the same module back
    assert remove_identity_layers(block) is block  # its dropout has p=0.1: not an identity
    x = torch.randn(2, 16, 64)
    block.eval(), out.eval()
    assert_close(out(x), block(x))
    assert dict(out.named_parameters()) == dict(block.named_parameters())  # the same Parameters


def test_identity_layers_are_skipped_but_kept():
    _, m = pair(ROOT / "stdlib/gpt2.nn", **SMALL_GPT2)
    mlp = m.get_submodule("transformer.h.0.mlp")
    assert isinstance(mlp.dropout, torch.nn.Dropout)  # still in the tree
    mlp_nodes = [n.target for n in mlp.graph.nodes if n.op == "call_module"]
    assert mlp_nodes == ["c_fc", "gelu", "c_proj"]


def test_passes_tuple_order():
    assert PASSES[0] is fuse_attention  # before remove_identity_layers takes attention's Dropout(0) away
    assert remove_identity_layers in PASSES


# ---- the provers ----
def test_mask_prover():
    g = fx.Graph()
    T = g.placeholder("T")
    ones = g.call_function(torch.ones, (T, T))
    cases = {
        "tril==0": (g.call_function(operator.eq, (g.call_function(torch.tril, (ones,)), 0)), True),
        "triu1==1": (g.call_function(operator.eq, (g.call_function(torch.triu, (ones, 1)), 1)), True),
        "triu1.bool": (g.call_method("bool", (g.call_function(torch.triu, (ones,), {"diagonal": 1}),)), True),
        "not tril": (g.call_function(torch.logical_not, (g.call_function(torch.tril, (ones,)),)), True),
        "tril-1==0": (g.call_function(operator.eq, (g.call_function(torch.tril, (ones, -1)), 0)), False),
        "triu==1": (g.call_function(operator.eq, (g.call_function(torch.triu, (ones,)), 1)), False),
        "ones": (ones, False),
    }
    for name, (node, causal) in cases.items():
        tri = masks.triangle(node)
        assert tri is not None and masks.masks_future(tri) is causal, name
        assert tri.rows is T and tri.cols is T
        want = torch.ones(5, 5).tril() == 0
        got = torch.tensor([[bool(tri.value(j - i)) for j in range(5)] for i in range(5)])
        assert torch.equal(got, want) is causal, name
    additive = masks.triangle(g.call_function(torch.triu, (g.call_function(torch.full, ((T, T), -math.inf)), 1)))
    assert masks.adds_causal(additive) and not masks.masks_future(additive)  # masked_fill takes bool masks only
    plain = masks.triangle(g.call_function(torch.tril, (ones,)))
    assert not masks.masks_future(plain) and not masks.adds_causal(plain)
    bool_ones = g.call_function(torch.ones, (T, T), {"dtype": torch.bool})
    assert masks.masks_future(masks.triangle(g.call_function(torch.triu, (bool_ones, 1))))
    assert masks.triangle(g.call_function(torch.ones, (T,))) is None  # not a matrix


def test_symbolic_shapes_follow_views_and_sizes():
    literal, _ = pair(ROOT / "specs/attention.nn", "Primitives")
    gm = literal.attn
    facts = infer(gm.graph, gm)
    by_name = {n.name: n for n in gm.graph.nodes}
    x = Size("x", 0), Size("x", 1)
    assert facts.shapes[by_name["x"]] == (Size("x", 0), Size("x", 1), Size("x", 2))  # rank from `input x: [B, T, C]`
    assert facts.shapes[by_name["qkv"]] == (*x, 192)  # Linear(64, 192)
    assert facts.shapes[by_name["transpose"]] == (x[0], 4, x[1], 16)  # view(B, T, heads, hs).transpose(1, 2)
    assert facts.shapes[by_name["matmul"]] == (x[0], 4, x[1], x[1])  # q @ k.T: (B, nh, T, T)
    assert facts.values[by_name["T"]] == x[1]
    assert facts.shapes[by_name["ones"]] == (x[1], x[1])


# ---- normalization from primitives ----
LN = """
block LN(C):
    input x: [B, T, C]
    mu = x.mean(dim={dims}, keepdim=true)
    var = x.var(dim={dims}, keepdim=true, correction={correction})
    out = {normalize}

model M(C=8):
    input x: float[B=2, T=3, C]
    LN(C)
    head y
"""


@pytest.mark.parametrize("dims, correction, normalize, fused", [
    ("-1", 0, "(x - mu) / sqrt(var + 1e-5)", True),
    ("(1, 2)", 0, "(x - mu) * rsqrt(var + 1e-3)", True),  # rank 3 from the declaration: trailing dims
    ("(-2, -1)", 0, "rsqrt(var + 1e-5) * (x - mu)", True),
    ("-1", 1, "(x - mu) / sqrt(var + 1e-5)", False),  # the unbiased variance is not layer norm's
    ("1", 0, "(x - mu) / sqrt(var + 1e-5)", False),  # not the trailing dims
    ("-1", 0, "(x - mu) / sqrt(var)", False),  # no eps
    ("-1", 0, "(x - mu) / (var + 1e-5)", False),
], ids=["last", "positive_dims", "rsqrt_left", "unbiased", "middle_dim", "no_eps", "no_sqrt"])
def test_layer_norm_forms(dims, correction, normalize, fused):
    literal, optimized = pair(LN.format(dims=dims, correction=correction, normalize=normalize))
    nodes = calls(optimized, (F.layer_norm,))
    assert len(nodes) == fused
    x = torch.randn(4, 5, 8) * 3 + 1
    assert_close(optimized(x), literal(x), rtol=1e-5, atol=1e-5)


def test_layer_norm_spec_becomes_one_call():
    literal, optimized = pair(ROOT / "specs/layernorm_primitives.nn")
    (node,) = calls(optimized, (F.layer_norm,))
    assert node.kwargs == {"eps": 1e-5}
    assert not calls(optimized, (torch.mean, torch.var, torch.sqrt))
    assert [r.pass_name for r in rewrites(optimized)] == ["fuse_layer_norm"]
    x = torch.randn(3, 8, 6, 6)
    assert_close(optimized(x), literal(x), rtol=1e-5, atol=1e-5)


def test_batch_norm_spec_becomes_one_call_and_moves_the_same_statistics():
    literal, optimized = pair(ROOT / "specs/batchnorm_primitives.nn", momentum=0.3)
    (node,) = calls(optimized, (netspec_ops.batch_norm,))
    assert [a.target for a in node.args[1:]] == ["running_mean", "running_var"]
    assert not calls(optimized, (torch.mean, torch.var))
    x = torch.randn(4, 8, 5, 5) * 2 + 1
    for _ in range(3):  # training: batch statistics out, running ones moved
        assert_close(optimized(x), literal(x), rtol=1e-5, atol=1e-5)
    assert_close(optimized.state_dict(), literal.state_dict())
    literal.eval(), optimized.eval()
    assert_close(optimized(x), literal(x), rtol=1e-5, atol=1e-5)


def test_batch_norm_falls_back_where_f_batch_norm_differs():
    literal, optimized = pair(ROOT / "specs/batchnorm_primitives.nn")
    for m in (literal, optimized):  # one layer in eval, the other training: as the layers compute it
        m.bn.running_mean.eval()
    x = torch.randn(4, 8, 5, 5)
    assert_close(optimized(x), literal(x))
    assert_close(optimized.state_dict(), literal.state_dict())
    literal.train(), optimized.train()
    one = torch.randn(1, 8, 1, 1)  # one value per channel: F.batch_norm would refuse it
    with pytest.warns(UserWarning):  # var with correction=1 of one value (the literal graph warns too)
        assert_close(optimized(one), literal(one), equal_nan=True)
    assert_close(optimized.state_dict(), literal.state_dict(), equal_nan=True)


def test_batch_norm_with_different_momenta_is_left_alone():
    text = (ROOT / "specs/batchnorm_primitives.nn").read_text().replace(
        "RunningStat(C, momentum=momentum, init=1)", "RunningStat(C, momentum=0.5, init=1)")
    literal, optimized = pair(text)
    assert not calls(optimized, (netspec_ops.batch_norm,))


# ---- what `netspec compile` ejects ----
@pytest.mark.parametrize("spec, model, fused", [
    ("specs/attention.nn", "Primitives", "netspec_compiler_ops_attention("),
    ("specs/gpt_outline.nn", None, "netspec_compiler_ops_attention("),
    ("stdlib/gpt2.nn", None, "F.scaled_dot_product_attention("),
    ("specs/layernorm_primitives.nn", None, "layer_norm = F.layer_norm("),
    ("specs/batchnorm_primitives.nn", None, "netspec_compiler_ops_batch_norm("),
])
def test_ejected_code_is_the_optimized_graph(spec, model, fused):
    from netspec.compiler.eject import eject
    params = SMALL_GPT2 if "gpt2" in spec else {}
    literal, optimized = pair(ROOT / spec, model, **params)
    codes = {opt: eject(ROOT / spec, model, params, optimize=opt) for opt in (True, False)}
    assert fused in codes[True] and fused not in codes[False]
    assert "as written" in codes[False].split('"""')[1] and "as written" not in codes[True].split('"""')[1]
    x = [torch.randint(0, 50, (2, 12)) if i.dtype == "int64" else torch.randn(4, *i.shape[1:])
         for i in literal.netspec.inputs]
    for opt, code in codes.items():
        assert "netspec" not in "\n".join(line for line in code.splitlines() if line.startswith(("import", "from")))
        ns: dict = {}
        exec(compile(code, "model.py", "exec"), ns)  # our own output, the file a user would import
        name = literal.netspec.name
        m = ns[name]()
        m.load_state_dict(literal.state_dict())
        for training in (False, True):
            for net in (m, literal):
                net.train(training)
                for layer in net.modules():  # dropout: compared in eval only
                    if isinstance(layer, torch.nn.Dropout):
                        layer.p = 0.0
            assert_close(m(*x), literal(*x), rtol=1e-5, atol=1e-5, msg=f"optimize={opt}, training={training}")


def test_compile_no_optimize_flag(capsys):
    from netspec.cli import main
    assert main(["compile", str(ROOT / "specs/attention.nn"), "-o", "-"]) == 0
    optimized = capsys.readouterr().out
    assert main(["compile", str(ROOT / "specs/attention.nn"), "-o", "-", "--no-optimize"]) == 0
    literal = capsys.readouterr().out
    assert "torch.softmax(" in literal and "torch.softmax(" not in optimized
    assert "attention(transpose, transpose_1, transpose_2, is_causal=True, scale=1.0 / math.sqrt(self.d // self.heads)" \
        in optimized  # the scale as the spec computes it from its parameters


# ---- ReLU in place ----
RELU = """
model M(d=8):
    input x: float[B=4, d]
{body}
    head y
"""


@pytest.mark.parametrize("body, inplace", [
    ("    fc: Linear(d, d); ReLU()", 1),
    ("    fc: Linear(d, d); bn: BatchNorm1d(d); ReLU()", 1),
    ("    fc: Linear(d, d)\n    h = fc + x\n    ReLU()", 1),  # a sum keeps nothing for backward
    ("    ReLU()", 0),  # the block's input: the caller's tensor
    ("    fc: Linear(d, d); Sigmoid(); ReLU()", 0),  # sigmoid's backward reads its output
    ("    h: Linear(d, d)\n    a: ReLU()\n    y = a + h", 0),  # read by something else
    ("    fc: Linear(d, d); ReLU(inplace=true)", 0),  # already in place
], ids=["linear", "batchnorm", "sum", "input", "after_sigmoid", "two_users", "already"])
def test_inplace_relu(body, inplace):
    literal, optimized = pair(RELU.format(body=body))
    fired = [r for r in rewrites(optimized) if r.pass_name == "inplace_relu"]
    assert len(fired) == inplace
    assert len([n for n in calls(optimized, (F.relu,)) if n.kwargs == {"inplace": True}]) == inplace
    x = torch.randn(4, 8, requires_grad=True)
    a, b = literal(x), optimized(x)
    assert_close(b, a)
    ga = torch.autograd.grad(a.square().sum(), [x, *literal.parameters()])
    gb = torch.autograd.grad(b.square().sum(), [x, *optimized.parameters()])
    for u, v in zip(ga, gb):
        assert_close(v, u)
