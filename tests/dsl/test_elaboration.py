"""Elaboration, construct by construct, read off the graph IR (no torch): naming, flow,
loops, conditionals, aliases, imports, forward references, init= / tie= / frozen=."""
import textwrap

import pytest

from netspec.dsl.elaborate import Elaborator
from netspec.dsl.errors import Diagnostics, NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.ir import InitSpec, Ref
from netspec.dsl.loader import load


def spec(text):
    return textwrap.dedent(text).lstrip()


def graph(text, **overrides):
    return elaborate(spec(text), overrides=overrides).graph


def paths(g):
    return [op.path for op in g.ops() if op.kind in ("module", "block")]


def error(text, **overrides) -> str:
    with pytest.raises(NetspecError) as e:
        elaborate(spec(text), overrides=overrides)
    return str(e.value)


def test_named_and_anonymous_layers():
    g = graph("""
        model M():
            input x: float[B=2, 4]
            fc: Linear(4, 4)
            Linear(4, 4)
            Linear(4, 4)
            BatchNorm1d(4)
            GELU()
            head y
    """)
    assert paths(g) == ["fc", "linear", "linear_1", "batch_norm1d", "gelu"]
    fc = g.op("fc")
    assert (fc.kind, fc.target, fc.ctor_args, fc.label) == ("module", "Linear", (4, 4), "Linear(4, 4)")


def test_anonymous_names_keep_clear_of_labels_written_later():
    g = graph("""
        model M():
            input x: float[B=2, 4]
            Linear(4, 4)
            linear: Linear(4, 4)
            head y
    """)
    assert paths(g) == ["linear_1", "linear"]


def test_group_numbers_members_like_sequential():
    g = graph("""
        model M():
            input x: float[B=2, 3, 8, 8]
            features:
                Conv2d(3, 4, 3)
                ReLU()
                Conv2d(4, 4, 3)
                named: Conv2d(4, 2, 1)
            head y
    """)
    assert paths(g) == ["features.0", "features.1", "features.2", "features.named"]
    assert g.containers == ["features"]
    assert {op.cluster for op in g.ops() if op.kind == "module"} == {"features"}


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
    assert paths(graph(text)) == ["layer1", "relu", "layer2", "relu_1"]
    g = graph(text, act="tanh", widths=[2, 3])
    assert paths(g) == ["layer1", "tanh"] and g.op("layer1").ctor_args == (2, 3)
    assert paths(graph(text, act="none")) == ["layer1", "layer2"]


def test_identical_instantiations_share_one_graph():
    g = graph("""
        block L(d):
            fc: Linear(d, d)
        model M(n=3):
            input x: float[B=1, 4]
            h:
                repeat n:
                    L(4)
            L(8)(x)
            head y = h
    """)
    blocks = [g.op(n).block for n in ("h_0", "h_1", "h_2", "l")]
    assert paths(g) == ["h.0", "h.1", "h.2", "l"]
    assert blocks[0] is blocks[1] is blocks[2] and blocks[3] is not blocks[0]
    assert (blocks[0].params, blocks[3].params) == ({"d": 4}, {"d": 8})


def test_every_distinct_block_is_an_instance_inner_first():
    program = load(spec("""
        block Inner(d):
            fc: Linear(d, d)
        block Outer(d):
            a: Inner(d)
            b: Inner(d)
        model M():
            input x: float[B=1, 4]
            o: Outer(4)
            head y
    """))
    elab = Elaborator(program, Diagnostics())
    top = elab.model(program.models()[0], {})
    assert [(i.block.name, [m for _, m in i.notes]) for i in elab.instances] == [
        ("Inner", ["in block 'Inner' instantiated here", "in block 'Outer' instantiated here"]),
        ("Outer", ["in block 'Outer' instantiated here"]),
        ("M", [])]
    assert elab.instances[-1].block is top and not any(i.had_errors for i in elab.instances)


def test_residual_and_merge():
    g = graph("""
        model M():
            input x: float[B=1, 4]
            residual:
                f: Linear(4, 4)
            g: Linear(4, 4)
            +x as s
            *x
            head y
    """)
    adds = [op for op in g.ops() if op.kind == "binop"]
    assert [(op.target, op.label) for op in adds] == [("add", "+"), ("add", "+"), ("mul", "*")]
    first, second, third = adds
    assert [a.node for a in first.args] == ["f", "x"] and first.flow_input == "f"
    assert [a.node for a in second.args] == ["g", "x"]
    assert [a.node for a in third.args] == [second.id, "x"]
    assert g.outputs[0].ref.node == third.id


def test_forward_reference_and_explicit_inputs():
    g = graph("""
        model M():
            input x: float[B=1, 4]
            out = a + 1
            a: Linear(4, 4)(x)
            head y = out
    """)
    add = g.op(g.outputs[0].ref.node)
    assert add.target == "add" and add.args[0].node == "a" and add.args[1] == 1
    assert set(g.graph.predecessors(add.id)) == {"a"} and set(g.graph.predecessors("a")) == {"x"}


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
    g = elaborate(text).graph
    assert (g.name, g.params, len(paths(g))) == ("Net3", {"n": 3, "d": 4}, 3)
    assert len(paths(elaborate(text, overrides={"n": 2}).graph)) == 2
    assert elaborate(text, "Net").graph.params == {"n": 1, "d": 4}


def test_parameter_defaults_use_earlier_parameters():
    g = graph("""
        model M(d=8, hidden=4 * d, heads=d // 4):
            input x: float[B=1, d]
            Linear(d, hidden)
            head y
    """, d=16)
    assert g.params == {"d": 16, "hidden": 64, "heads": 4}


def test_conditional_steps_chain_like_python():
    text = """
        model M(act="gelu"):
            input x: float[B=1, 4]
            assert act in ["relu", "gelu", "tanh"], "act must be relu, gelu or tanh"
            a: ReLU() if act == "relu" else GELU() if act == "gelu" else Tanh()
            head y
    """
    assert [graph(text, act=a).op("a").target for a in ("relu", "gelu", "tanh")] == ["ReLU", "GELU", "Tanh"]
    assert error(text, act="elu").splitlines()[0] == "<string>:3:5: error: act must be relu, gelu or tanh"


def test_weight_tying_init_and_frozen_are_recorded():
    g = graph("""
        model M():
            input idx: long[B=1, T=4]
            g:
                wte: Embedding(10, 6, init=normal(0.02))
            a: Linear(6, 6, init=zeros, bias_init=constant(0.5), frozen=true)
            b: Linear(6, 6, init=normal(std=0.02, mean=1), bias_init=0.1)
            lm_head: Linear(6, 10, bias=false, tie=g.wte)
            head logits: lm
    """)
    assert g.op("g_wte").init == {"weight": InitSpec("normal", (0.02,))}
    a, b, head = g.op("a"), g.op("b"), g.op("lm_head")
    assert a.init == {"weight": InitSpec("zeros"), "bias": InitSpec("constant", (0.5,))} and a.frozen
    assert b.init == {"weight": InitSpec("normal", (), (("mean", 1), ("std", 0.02))),
                      "bias": InitSpec("constant", (0.1,))} and not b.frozen
    assert head.tie[0] == "g.wte" and head.ctor_kwargs == {"bias": False}
    assert (g.inputs[0].dtype, g.outputs[0].task) == ("int64", "lm")


def test_symbolic_dims_become_size_ops_once():
    g = graph("""
        model M(d=8, heads=2):
            input x: float[B=1, T=3, d]
            view(B, T, heads, d // heads); transpose(1, 2)
            y = x + T
            head out = _
    """)
    assert g.inputs[0].dims == (("B", 1), ("T", 3), 8)
    sizes = [op for op in g.ops() if op.target == "size"]
    assert [(op.id, op.args[0].node, op.args[1]) for op in sizes] == [("B", "x", 0), ("T", "x", 1)]
    view = g.op("view")
    assert [getattr(a, "node", a) for a in view.args] == ["x", "B", "T", 2, 4]
    assert view.label == "view(B, T, 2, 4)"


def test_imports_search_path(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "blocks.nn").write_text("block Twice(d):\n    a: Linear(d, d)\n    b: Linear(d, d)\n")
    main = tmp_path / "main.nn"
    main.write_text("import blocks\nmodel M():\n    input x: float[B=1, 3]\n    t: blocks.Twice(3)\n    head y\n")
    with pytest.raises(NetspecError, match="cannot find spec blocks"):
        elaborate(main)
    assert paths(elaborate(main, extra_paths=[lib]).graph) == ["t"]
    monkeypatch.setenv("NETSPEC_PATH", str(lib))
    t = elaborate(main).graph.op("t")
    assert (t.block.name, paths(t.block)) == ("Twice", ["a", "b"])


def test_spec_text_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    text = f'model M(p=__import__("os").system("touch {marker}")):\n    input x: float[B=1, 2]\n    head y\n'
    assert "unknown function '__import__'" in error(text)
    assert not marker.exists()


def test_switching_the_flow_with_as_binds_the_name():
    g = graph("""
        model M():
            input x: float[B=1, 3]
            input w: float[B=1, 3]
            w as z
            head y = z + x
    """)
    add = g.op(g.outputs[0].ref.node)
    assert [a.node for a in add.args] == ["w", "x"]


def test_a_block_without_inputs_takes_x_and_outputs_its_flow():
    g = graph("""
        block Act(d):
            fc: Linear(d, d)
            ReLU()
        model M():
            input inp: float[B=1, 4]
            b: Act(4)
            head y
    """)
    b = g.op("b").block
    assert [op.id for op in b.inputs] == ["x"] and [(o.name, o.ref.node) for o in b.outputs] == [("out", "relu")]
    assert [a.node for a in g.op("b").args] == ["inp"]


def test_unpacking_a_block_with_two_outputs():
    g = graph("""
        block Split(d):
            input x
            a: Linear(d, d)(x)
            b: Linear(d, d)(x)
            output first = a
            output second = b
        model M():
            input x: float[B=1, 4]
            p, q = Split(4)(x)
            head y = p + q
    """)
    assert [(op.id, op.args[1]) for op in g.ops() if op.kind == "getitem"] == [("p", 0), ("q", 1)]
    assert isinstance(g.op("p").args[0], Ref) and g.op("p").args[0].node == "split"
