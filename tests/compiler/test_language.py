"""Language semantics, construct by construct: naming, flow, loops, conditionals,
aliases, imports, doc comments, forward references."""
import textwrap

import pytest
import torch

import netspec
from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.parser import parse


def spec(text):
    return textwrap.dedent(text).lstrip()


def keys(text, **params):
    return list(netspec.build(spec(text), **params).state_dict())


def test_named_and_anonymous_layers():
    ks = keys("""
        model M():
            input x: float[B=2, 4]
            fc: Linear(4, 4)
            Linear(4, 4)
            Linear(4, 4)
            BatchNorm1d(4)
            head y
    """)
    assert ks[:6] == ["fc.weight", "fc.bias", "linear.weight", "linear.bias", "linear_1.weight", "linear_1.bias"]
    assert ks[6:8] == ["batch_norm1d.weight", "batch_norm1d.bias"]


def test_group_numbers_members_like_sequential():
    ks = keys("""
        model M():
            input x: float[B=2, 3, 8, 8]
            features:
                Conv2d(3, 4, 3)
                ReLU()
                Conv2d(4, 4, 3)
                named: Conv2d(4, 2, 1)
            head y
    """)
    assert ks == ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                  "features.named.weight", "features.named.bias"]


def test_loops_templates_and_conditionals():
    text = """
        model M(widths=[2, 4, 8], act="relu"):
            input x: float[B=1, 2]
            for i in range(len(widths) - 1):
                layer{i + 1}: Linear(widths[i], widths[i + 1])
                if act == "relu":
                    ReLU()
                elif act == "tanh":
                    Tanh()
            head y
    """
    m = netspec.build(spec(text))
    assert [k for k in m.state_dict() if k.endswith("weight")] == ["layer1.weight", "layer2.weight"]
    assert "relu" in dict(m.named_modules()) and "tanh" not in dict(m.named_modules())
    m = netspec.build(spec(text), act="tanh", widths=[2, 3])
    assert m(torch.zeros(1, 2)).shape == (1, 3)
    assert "tanh" in dict(m.named_modules())


def test_repeat_builds_one_graph_for_identical_blocks():
    m = netspec.build(spec("""
        block L(d):
            fc: Linear(d, d)
        model M(n=5):
            input x: float[B=1, 4]
            h:
                repeat n:
                    L(4)
            head y
    """))
    h = [getattr(m.h, str(i)) for i in range(5)]
    assert all(b.graph is h[0].graph for b in h)  # lowered once
    assert h[0].fc.weight is not h[1].fc.weight  # but each copy has its own weights


def test_residual_and_merge_rebinding():
    m = netspec.build(spec("""
        model M():
            input x: float[B=1, 4]
            residual:
                f: Linear(4, 4, bias=false, init=zeros)
            g: Linear(4, 4, bias=false, init=ones)
            +x as x
            *x
            head y
    """))
    x = torch.randn(1, 4)
    g = x.sum(-1, keepdim=True).expand(1, 4)  # f is zero, so the residual passes x; g sums it
    torch.testing.assert_close(m(x), (g + x) * (g + x))


def test_forward_reference_and_explicit_inputs():
    m = netspec.build(spec("""
        model M():
            input x: float[B=1, 4]
            out = a + 1
            a: Linear(4, 4)(x)
            head y = out
    """))
    assert m(torch.zeros(1, 4)).shape == (1, 4)


def test_aliases_give_new_defaults_and_accept_overrides():
    text = spec("""
        model Net(n=1, d=4):
            input x: float[B=1, d]
            h:
                repeat n:
                    Linear(d, d)
            head y
        default model Net3 = Net(n=3)
    """)
    a = netspec.analyze(text)
    assert a.info.name == "Net3" and a.num_params == 3 * 20
    assert netspec.analyze(text, overrides={"n": 2}).num_params == 2 * 20
    assert netspec.analyze(text, "Net").num_params == 20


def test_conditional_step_and_assert():
    text = spec("""
        model M(act="tanh"):
            input x: float[B=1, 4]
            assert act in ["tanh", "relu"], "act must be tanh or relu"
            a: Tanh() if act == "tanh" else ReLU()
            head y
    """)
    assert type(netspec.build(text).a).__name__ == "Tanh"
    assert type(netspec.build(text, act="relu").a).__name__ == "ReLU"
    with pytest.raises(NetspecError, match="act must be tanh or relu"):
        netspec.build(text, act="gelu")


def test_conditional_steps_chain_like_python():
    text = spec("""
        model M(act="gelu"):
            input x: float[B=1, 4]
            a: ReLU() if act == "relu" else GELU() if act == "gelu" else Tanh()
            head y
    """)
    assert [type(netspec.build(text, act=a).a).__name__ for a in ("relu", "gelu", "tanh")] == \
        ["ReLU", "GELU", "Tanh"]


def test_weight_tying_is_one_parameter():
    m = netspec.build(spec("""
        model M():
            input idx: long[B=1, T=4]
            g:
                wte: Embedding(10, 6)
            lm_head: Linear(6, 10, bias=false, tie=g.wte)
            head logits: lm
    """))
    assert m.lm_head.weight is m.g.wte.weight
    assert sum(p.numel() for p in m.parameters()) == 60


def test_inits():
    m = netspec.build(spec("""
        model M():
            input x: float[B=1, 256]
            a: Linear(256, 256, init=zeros, bias_init=ones)
            b: Linear(256, 256, init=normal(std=0.02), bias_init=constant(0.5))
            c: Linear(256, 256, frozen=true)
            head y
    """))
    assert torch.all(m.a.weight == 0) and torch.all(m.a.bias == 1) and torch.all(m.b.bias == 0.5)
    assert abs(m.b.weight.std().item() - 0.02) < 0.002
    assert not m.c.weight.requires_grad and m.b.weight.requires_grad


def test_symbolic_dims_are_runtime_sizes():
    m = netspec.build(spec("""
        model M(d=8, heads=2):
            input x: float[B=1, T=3, d]
            view(B, T, heads, d // heads); transpose(1, 2)
            head y
    """))
    assert m(torch.zeros(5, 7, 8)).shape == (5, 2, 7, 4)  # not the defaults: the real sizes


def test_imports_search_path(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "blocks.nn").write_text("block Twice(d):\n    a: Linear(d, d)\n    b: Linear(d, d)\n")
    main = tmp_path / "main.nn"
    main.write_text("import blocks\nmodel M():\n    input x: float[B=1, 3]\n    t: blocks.Twice(3)\n    head y\n")
    with pytest.raises(NetspecError, match="cannot find spec blocks"):
        elaborate(main)
    assert elaborate(main, extra_paths=[lib]).graph.name == "M"
    monkeypatch.setenv("NETSPEC_PATH", str(lib))
    assert list(netspec.build(main).state_dict())[0] == "t.a.weight"


def test_spec_text_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    text = f'model M(p=__import__("os").system("touch {marker}")):\n    input x: float[B=1, 2]\n    head y\n'
    with pytest.raises(NetspecError):
        netspec.build(text)
    assert not marker.exists()


def test_switching_the_flow_with_as_binds_the_name():
    m = netspec.build(spec("""
        model M():
            input x: float[B=1, 3]
            input w: float[B=1, 3]
            w as z
            head y = z + x
    """))
    x, w = torch.randn(1, 3), torch.randn(1, 3)
    torch.testing.assert_close(m(x, w), w + x)
