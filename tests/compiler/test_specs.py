"""The example specs in specs/: each parses, checks without warnings, builds, renders and
runs at its default input; each is compared with a hand-written torch module (exact
parameter counts, state_dict keys, output shapes, and outputs under the same weights),
and the from-primitives specs are compared with torch's own layers.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import netspec
from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import check_all
from tests.reference import spec_refs as R
from tests.reference.mlp import MLP as MLPRef

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
SPECS = sorted(SPECS_DIR.glob("*.nn"))


def spec(name: str) -> Path:
    return SPECS_DIR / f"{name}.nn"


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def default_inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in model.netspec.inputs:
        if i.dtype in ("int64", "int32"):
            vocab = model.netspec.params.get("vocab", model.netspec.params.get("src_vocab", 10))
            out.append(torch.randint(0, vocab, i.shape, generator=g))
        else:
            out.append(torch.randn(i.shape, generator=g))
    return out


def twin(path, model_name, ref: nn.Module, **params):
    """Build the spec and load the reference's weights into it, key for key."""
    m = netspec.build(path, model_name, **params)
    m.load_state_dict(ref.state_dict(), strict=True)
    return m


def randomize(module: nn.Module, seed=0):
    """Move every parameter away from its initial value (ones/zeros would hide a swapped scale/shift)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return module


# ---- every spec: parse, check, build, render, run ----
def test_specs_exist():
    names = {p.stem for p in SPECS}
    assert {"gpt_outline", "attention", "batchnorm_primitives", "layernorm_primitives", "mlp", "transformer",
            "autoencoder", "gan", "video", "multitask", "digits_cnn", "char_rnn", "word2vec"} <= names


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_checks_builds_renders_runs(path, tmp_path):
    text = path.read_text()
    assert text.startswith("## "), "every example opens with a ## file doc"
    _, checked, warnings = check_all(path)
    assert checked, "every example defines a model"
    assert not warnings, [str(w) for w in warnings]
    for c in checked:
        analysis = netspec.analyze(path, c.defn.name)
        try:
            from netspec.dsl.render import render
        except ImportError:  # pragma: no cover - dsl/render is written by someone else
            pass
        else:
            out = render(analysis.graph, tmp_path / f"{c.defn.name}.svg", shapes=analysis.shapes)
            assert out.stat().st_size > 1000
        model = netspec.build(path, c.defn.name)
        assert n_params(model) == analysis.num_params
        for mode in (False, True):  # eval, then train (batch norm's batch statistics, dropout)
            model.train(mode)
            out = model(*default_inputs(model))
            outs = out if isinstance(out, dict) else {model.netspec.heads[0].name: out}
            assert set(outs) == {h.name for h in model.netspec.heads}
            for head in model.netspec.heads:
                assert tuple(outs[head.name].shape) == head.shape
                assert torch.isfinite(outs[head.name]).all()


# ---- 1. the notes' GPT outline vs a hand-written module ----
def test_gpt_outline_equals_hand_written():
    ref = R.GPTOutline()
    m = twin(spec("gpt_outline"), None, ref)
    assert n_params(m) == n_params(ref) == 867_328
    idx = torch.randint(0, 256, (2, 64))
    ref.eval(), m.eval()
    assert_close(m(idx), ref(idx))
    short = idx[:, :10]  # T is a symbol: any length up to block_size
    assert_close(m(short), ref(short))
    ref.train(), m.train()  # dropout masks drawn in the same order
    torch.manual_seed(1)
    y = m(idx)
    torch.manual_seed(1)
    assert_close(y, ref(idx))
    assert m.netspec.heads[0].task == "lm" and m.netspec.heads[0].shape == (1, 64, 256)


# ---- 2. attention from primitives == fused attention == torch's MultiheadAttention ----
def test_attention_primitives_equal_fused():
    prim = randomize(netspec.build(spec("attention"), "Primitives"))
    fused = netspec.build(spec("attention"), "Fused")
    fused.load_state_dict(prim.state_dict(), strict=True)
    prim.eval(), fused.eval()
    for shape in ((2, 16, 64), (3, 5, 64)):
        x = torch.randn(shape)
        assert_close(prim(x), fused(x))
    # and both equal torch's MultiheadAttention with a causal mask under the same weights
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(prim.attn.qkv.weight)
        mha.in_proj_bias.copy_(prim.attn.qkv.bias)
        mha.out_proj.weight.copy_(prim.attn.proj.weight)
        mha.out_proj.bias.copy_(prim.attn.proj.bias)
    x = torch.randn(2, 16, 64)
    mask = nn.Transformer.generate_square_subsequent_mask(16)
    assert_close(prim(x), mha(x, x, x, attn_mask=mask, need_weights=False)[0])
    assert netspec.build(spec("attention")).netspec.name == "Primitives"  # the default model


def test_attention_rejects_heads_that_do_not_divide_d():
    for model in ("Primitives", "Fused"):
        with pytest.raises(NetspecError, match="d must be divisible by heads") as err:
            netspec.analyze(spec("attention"), model, {"heads": 5})
        assert spec("attention").read_text().splitlines()[err.value.errors[0].span.line - 1].strip().startswith(
            "assert d % heads == 0")


# ---- 3. batch norm and layer norm from primitives vs torch ----
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batchnorm_primitives_equal_torch(momentum):
    ref = nn.BatchNorm2d(8, momentum=momentum)
    randomize(ref)
    m = netspec.build(spec("batchnorm_primitives"), momentum=momentum)
    # the buffers start where torch's do: RunningStat(C, init=1) for the variance
    assert torch.equal(m.bn.running_var.value, torch.ones(8))
    assert torch.equal(m.bn.running_mean.value, torch.zeros(8))
    with torch.no_grad():
        m.bn.weight.copy_(ref.weight)
        m.bn.bias.copy_(ref.bias)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):  # training: batch statistics, running statistics updated by lerp
        x = torch.randn(4, 8, 6, 6, generator=g) * 3 + 1
        assert_close(m(x), ref(x))
    assert_close(m.bn.running_mean.value, ref.running_mean)
    assert_close(m.bn.running_var.value, ref.running_var)  # torch keeps the unbiased variance
    assert not torch.allclose(ref.running_var, torch.ones(8))  # they really moved
    x = torch.randn(5, 8, 3, 7, generator=g)  # any batch and image size
    assert_close(m(x), ref(x))
    m.eval(), ref.eval()  # eval: the running statistics
    assert_close(m(x), ref(x))
    assert n_params(m) == n_params(ref) == 16


def test_layernorm_primitives_equal_torch():
    ref = randomize(nn.LayerNorm([8, 6, 6]))
    m = netspec.build(spec("layernorm_primitives"))
    m.load_state_dict({"ln.weight": ref.weight, "ln.bias": ref.bias}, strict=True)
    x = torch.randn(4, 8, 6, 6) * 3 + 1
    for mode in (True, False):
        m.train(mode), ref.train(mode)
        assert_close(m(x), ref(x))
    assert_close(m(x[:1]), ref(x[:1]))  # each sample on its own
    assert n_params(m) == n_params(ref) == 2 * 8 * 6 * 6


# ---- 4. the MLP with its BN/dropout placement vs tests/reference/mlp.py ----
def test_mlp_equals_reference():
    ref = randomize(MLPRef(784, (256, 128), 10, dropout=0.5))
    m = twin(spec("mlp"), None, ref)
    assert list(m.state_dict()) == list(ref.state_dict())
    assert n_params(m) == n_params(ref) == 237_482
    x = torch.randn(8, 784)
    torch.manual_seed(0)
    y = m(x)  # training: batch statistics and the two dropouts, same masks in the same order
    torch.manual_seed(0)
    assert_close(y, ref(x))
    for key in ("bn0.running_mean", "bn2.running_var", "bn1.num_batches_tracked"):
        assert_close(m.state_dict()[key], ref.state_dict()[key])
    m.eval(), ref.eval()
    assert_close(m(x), ref(x))
    # the placement: BN first, no dropout right before the output layer (as written: the
    # optimizer turns the ReLU layers into in-place calls)
    names = [n.target for n in netspec.build(spec("mlp"), optimize=False).graph.nodes if n.op == "call_module"]
    assert names == ["bn0", "drop0", "fc1", "act1", "bn1", "drop1", "fc2", "act2", "bn2", "fc3"]


def test_mlp_parameters_follow_reference():
    ref = MLPRef(20, (64, 32, 16), 3, dropout=0.1, activation="gelu").eval()
    m = twin(spec("mlp"), None, ref, d_in=20, hidden=[64, 32, 16], classes=3, p=0.1, act="gelu").eval()
    x = torch.randn(5, 20)
    assert_close(m(x), ref(x))
    with pytest.raises(NetspecError, match="act must be relu, gelu or tanh"):
        netspec.analyze(spec("mlp"), overrides={"act": "silu"})
    for act, layer in (("relu", nn.ReLU), ("gelu", nn.GELU), ("tanh", nn.Tanh)):  # the conditional step
        m = netspec.build(spec("mlp"), act=act)
        assert type(m.act1) is layer and type(m.act2) is layer


# ---- 5. the encoder-decoder Transformer vs torch.nn.Transformer ----
def test_transformer_positions_are_the_papers_sinusoids():
    m = netspec.build(spec("transformer"))
    assert not any("pos" in k for k in m.state_dict())  # fixed, not learned
    for T in (16, 5, 300):  # any length: nothing was sized by a max_len
        x = torch.zeros(1, T, 64)
        pe = m.tgt_pos(x)
        assert pe.shape == (1, T, 64)
        assert_close(pe[0], R.sinusoids(T, 64), rtol=0, atol=1e-4 if T > 100 else 1e-5)
    pe = m.src_pos(torch.zeros(1, 3, 64))[0]
    assert_close(pe[1, :2], torch.tensor([math.sin(1.0), math.cos(1.0)]))  # i = 0: sin(pos), cos(pos)
    assert_close(pe[2, 62:], torch.tensor([math.sin(2 / 10000 ** (62 / 64)), math.cos(2 / 10000 ** (62 / 64))]))
    assert_close(pe[0], torch.tensor([0.0, 1.0] * 32))  # pos 0: sin 0, cos 0
    with pytest.raises(NetspecError, match="the sinusoidal encoding needs an even d"):
        netspec.analyze(spec("transformer"), overrides={"d": 63, "heads": 1})


def test_transformer_equals_torch_transformer():
    ref = R.Seq2SeqTransformer()
    m = twin(spec("transformer"), None, ref)
    # token embeddings, attention, feed-forward, norms and the generator; the sinusoidal
    # positions have no parameters (learned positions, 2 x 128 x 64, were 443,112 in all)
    assert n_params(m) == n_params(ref) == 426_728
    assert n_params(ref.transformer) == n_params(nn.Transformer(64, 4, 2, 2, 256, batch_first=True))
    mhas = [mod for mod in m.modules() if isinstance(mod, nn.MultiheadAttention)]
    assert len(mhas) == 4 and all(mod.batch_first for mod in mhas)  # the spec relies on the default
    src, tgt = torch.randint(0, 1000, (2, 20)), torch.randint(0, 1000, (2, 16))
    m.eval(), ref.eval()
    out = m(src, tgt)
    assert out.shape == (2, 16, 1000) == m.netspec.heads[0].shape
    assert_close(out, ref(src, tgt))
    # masked self-attention: changing a later target token leaves earlier positions alone
    tgt2 = tgt.clone()
    tgt2[:, 10] = (tgt2[:, 10] + 1) % 1000
    out2 = m(src, tgt2)
    assert_close(out2[:, :10], out[:, :10])
    assert not torch.allclose(out2[:, 10:], out[:, 10:])
    # cross-attention: every position depends on the source
    src2 = src.clone()
    src2[:, -1] = (src2[:, -1] + 1) % 1000
    assert not torch.allclose(m(src2, tgt)[:, 0], out[:, 0])


# ---- 6. autoencoder ----
def test_autoencoder_equals_reference():
    ref = R.Autoencoder()
    m = twin(spec("autoencoder"), None, ref)
    assert n_params(m) == n_params(ref) == 111_521
    x = torch.rand(8, 1, 28, 28)
    assert_close(m(x), ref(x))
    head = m.netspec.heads[0]
    assert (head.name, head.task, head.shape) == ("recon", "reconstruct", (8, 1, 28, 28))


# ---- 7. GAN: two models in one file ----
def test_gan_generator_and_discriminator():
    G, D = R.Generator(), R.Discriminator()
    g = twin(spec("gan"), "Generator", G)
    d = twin(spec("gan"), "Discriminator", D)
    assert netspec.build(spec("gan")).netspec.name == "Generator"  # the default model
    assert n_params(g) == n_params(G) == 533_889
    assert n_params(d) == n_params(D) == 138_689
    z = torch.randn(16, 64)
    for mode in (True, False):
        for net in (g, d, G, D):
            net.train(mode)
        fake = g(z)  # one call per network and mode: training calls move BN's running statistics
        assert_close(fake, G(z))
        assert fake.shape == (16, 1, 28, 28) and fake.abs().max() <= 1
        score = d(fake)
        assert_close(score, D(fake))
        assert score.shape == (16, 1)


# ---- 8. (2+1)D vs 3D video convolution ----
def test_video_blocks_parameter_counts():
    assert R.r2plus1d_mid_channels(64, 128) == 230
    c3, r21 = R.Conv3dBlockNet(), R.R2Plus1dBlockNet()
    m3 = twin(spec("video"), "Conv3dNet", c3)
    m21 = twin(spec("video"), "R2Plus1dNet", r21)
    # the counts stated in specs/video.nn
    assert n_params(m3) == n_params(c3) == 221_440
    assert n_params(m21) == n_params(r21) == 221_516
    assert m21.res.spatial.weight.shape == (230, 64, 1, 3, 3)
    # with N_in = N_out the convolutions match exactly (M = 144), only the BNs differ
    a3 = netspec.analyze(spec("video"), "Conv3dNet", {"cin": 64, "cout": 64})
    a21 = netspec.analyze(spec("video"), "R2Plus1dNet", {"cin": 64, "cout": 64})
    assert a3.num_params == 110_592 + 2 * 64
    assert a21.num_params == 110_592 + 2 * 144 + 2 * 64
    clip = torch.randn(1, 64, 4, 10, 10)
    for net, ref in ((m3, c3), (m21, r21)):
        net.eval(), ref.eval()
        assert_close(net(clip), ref(clip))
        assert net(clip).shape == (1, 128, 4, 10, 10)


# ---- 9. multi-task: two heads with weights ----
def test_multitask_two_heads():
    ref = R.MultiTask()
    m = twin(spec("multitask"), None, ref)
    assert n_params(m) == n_params(ref) == 103_278
    heads = {h.name: (h.task, h.weight, h.shape) for h in m.netspec.heads}
    assert heads == {"logits": ("classify", 1.0, (8, 10)), "bbox": ("regress", 0.5, (8, 4))}
    x = torch.randn(8, 3, 32, 32)
    m.eval(), ref.eval()
    out, want = m(x), ref(x)
    assert set(out) == {"logits", "bbox"}
    for k in out:
        assert_close(out[k], want[k])


# ---- 10. a small CNN for digits, a char-level LSTM ----
def test_digits_cnn_equals_reference():
    ref = R.DigitsCNN()
    m = twin(spec("digits_cnn"), None, ref)
    assert n_params(m) == n_params(ref) == 220_234
    x = torch.randn(32, 1, 28, 28)
    m.eval(), ref.eval()
    assert_close(m(x), ref(x))


def test_char_rnn_equals_reference():
    ref = R.CharRNN()
    m = twin(spec("char_rnn"), None, ref)
    assert n_params(m) == n_params(ref) == 886_880
    assert m.lstm.batch_first  # the spec relies on the default
    assert m.netspec.heads[0].shape == (4, 100, 96)
    idx = torch.randint(0, 96, (3, 24))  # T is a symbol: any length
    m.eval(), ref.eval()
    out = m(idx)
    assert out.shape == (3, 24, 96)
    assert_close(out, ref(idx))
    # causal: the prediction at t does not see t+1
    idx2 = idx.clone()
    idx2[:, 12] = (idx2[:, 12] + 1) % 96
    assert_close(m(idx2)[:, :12], out[:, :12])
