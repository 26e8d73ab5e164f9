"""Labels and steps without torch: numbered members at any depth, reserved words as labels,
labels that never hide a layer type, expressions as steps, `training`, argument choices."""
import textwrap

import pytest

from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.parser import parse


def spec(text):
    return textwrap.dedent(text).lstrip()


def paths(text) -> list[str]:
    """Every module path of a model, nested blocks included, in source order."""
    out = []
    for prefix, block in elaborate(spec(text)).graph.walk():
        out += [prefix + op.path for op in block.ops() if op.kind == "module"]
    return out


def errors(text) -> list[tuple[int, int, str]]:
    with pytest.raises(NetspecError) as e:
        elaborate(spec(text))
    return [(d.span.line, d.span.col, d.message) for d in e.value.diagnostics if d.severity == "error"]


# ---- numbered members ----
def test_numeric_labels_number_a_blocks_own_members():
    assert paths("""
        block ConvBN(c):
            0: Conv2d(c, c, 3, padding=1, bias=false)
            1: BatchNorm2d(c)
            2: ReLU6()

        model M():
            input x: float[B=1, 4, 8, 8]
            features:
                ConvBN(4)
                ConvBN(4)
            head y
    """) == ["features.0.0", "features.0.1", "features.0.2", "features.1.0", "features.1.1", "features.1.2"]


def test_numbered_groups_nest_at_any_depth():
    assert paths("""
        model M():
            input x: float[B=1, 4]
            features:
                0:
                    0: Linear(4, 4)
                    Linear(4, 4)
                block:
                    ReLU()
                    Linear(4, 4)
            head y
    """) == ["features.0.0", "features.0.1", "features.block.0", "features.block.1"]


def test_hole_labels_number_layers_in_a_loop():
    assert paths("""
        model M(n=3):
            input x: float[B=1, 4]
            layers:
                for i in range(n):
                    {i}: Linear(4, 4)
            head y
    """) == ["layers.0", "layers.1", "layers.2"]


def test_a_numbered_layer_is_tied_by_a_quoted_path():
    g = elaborate(spec("""
        model M():
            input x: long[B=1, 4]
            emb:
                0: Embedding(10, 4)
            out: Linear(4, 10, bias=false, tie="emb.0")
            head y
    """)).graph
    assert g.op("out").tie[0] == "emb.0"


def test_a_label_must_make_one_path_part():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            1.5: Linear(4, 4)
            for s in ["a.b"]:
                {s}: Linear(4, 4)
            head y
    """) == [(3, 5, "a label must be a name or a non-negative integer, got '1.5'"),
             (5, 9, "a label must be a name or a non-negative integer, got 'a.b'")]


def test_two_members_on_one_number_are_duplicates():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            g:
                Linear(4, 4)
                0: Linear(4, 4)
            head y
    """) == [(5, 9, "duplicate layer name 'g.0' (first defined at <string>:4:9)")]


# ---- reserved words ----
@pytest.mark.parametrize("word", ["head", "output", "input", "block", "model", "default"])
def test_reserved_words_label_layers_and_groups(word):
    assert paths(f"""
        model M():
            input x: float[B=1, 4]
            g:
                {word}: Linear(4, 4)
            {word}:
                Linear(4, 4)
            head y
    """) == [f"g.{word}", f"{word}.0"]


def test_a_reserved_label_names_a_value_too():
    c = elaborate(spec("""
        model M():
            input x: float[B=1, 4]
            head: Linear(4, 4)
            output: Linear(4, 4)(x)
            y = head + output
            head out = y
    """))
    assert [o.name for o in c.graph.outputs] == ["out"]
    assert c.graph.op(c.graph.outputs[0].ref.node).target == "add"


def test_head_without_a_name_says_how_to_write_one():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            head: classify
    """)[0] == (3, 11, "'classify' is a head task: write `head NAME: classify`")


# ---- labels and layer types ----
def test_a_label_hides_no_layer_type():
    assert paths("""
        model M():
            input x: float[B=1, 4]
            LayerNorm: LayerNorm(4)
            LayerNorm(4)
            y = LayerNorm(4)(x)
            head out
    """) == ["LayerNorm", "layer_norm", "layer_norm_1"]


def test_calling_a_value_is_still_an_error():
    assert errors("""
        model M(k=2):
            input x: float[B=1, 4]
            k(4)
            head out
    """) == [(3, 5, "'k' is a value, not a layer")]


# ---- expressions as steps ----
def test_expressions_continue_the_flow():
    c = elaborate(spec("""
        model M():
            input x: float[B=1, 3, 4]
            a: Linear(4, 4)
            a + x
            _[:, 0]
            _ * 2 as y
            y.softmax(dim=-1)
            head out
    """))
    g = c.graph
    chain = []
    node = g.outputs[0].ref.node
    while node != "a":
        op = g.op(node)
        chain.append(op.target)
        node = op.args[0].node
    assert chain == ["softmax", "mul", "getitem", "add"]


def test_expression_steps_report_their_misuse():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            y: _ * 2
            3 * 4
            z: x.view(1, 2, 2)
            head out
    """) == [(3, 5, "a label names a layer, and this line computes an expression: name its value with `y = ...`"),
             (4, 5, "this line computes 12, not a tensor: name a constant with `name = ...`"),
             (5, 5, "a label names a layer, and this line computes an expression: name its value with `z = ...`")]


def test_a_leading_sign_is_still_a_merge():
    mod = parse(spec("""
        model M():
            input x: float[B=1, 4]
            -x
            head out
    """))
    assert type(mod.defs[0].body[1]).__name__ == "Merge"


# ---- training mode ----
def test_training_chooses_between_values_at_run_time():
    g = elaborate(spec("""
        model M():
            input x: float[B=1, 4]
            y = x * 2 if training else x
            dropout(0.5)
            head out = y
            head other
    """)).graph
    select = g.op(g.outputs[0].ref.node)
    assert select.kind == "select" and g.op(select.args[0].node).kind == "attr"
    drop = g.op(g.outputs[1].ref.node)
    assert drop.target == "dropout" and drop.kwargs["training"].node == select.args[0].node


def test_only_training_chooses_at_run_time():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            y = x if x else x
            head out = y
    """) == [(3, 14, "the condition of `a if c else b` must be known at compile time (or be `training`)")]


# ---- arguments ----
def test_choices_are_checked_with_a_suggestion():
    assert errors("""
        model M():
            input x: float[B=1, 4]
            StochasticDepth(0.1, mode="rows")
            head out
    """) == [(3, 26, 'StochasticDepth: \'mode\' must be one of "row", "batch", got "rows" (did you mean \'row\'?)')]


def test_recurrent_state_is_a_second_input():
    g = elaborate(spec("""
        model M():
            input x: float[B=2, T=5, 4]
            input h: float[1, B, 8]
            input c: float[1, B, 8]
            lstm: LSTM(4, 8, return_state=true)(x, (h, c))
            head out
    """)).graph
    op = g.op("lstm")
    assert op.options == {"return_state": True} and "return_state" not in op.ctor_kwargs
    assert [r.node for r in op.args[1]] == ["h", "c"]
    assert set(g.graph.predecessors("lstm")) == {"x", "h", "c"}


def test_a_state_is_refused_where_a_layer_takes_none():
    assert errors("""
        model M():
            input x: float[B=2, 4]
            Linear(4, 4)(x, (x, x))
            head out
    """) == [(3, 21, "inputs of a layer are tensors given by position, got (x, x)")]


def test_an_argument_error_in_a_loop_names_the_layer_once():
    assert errors("""
        model M(widths=[4, 8, 0, 16]):
            input x: float[B=1, 4]
            layers:
                for i in range(len(widths) - 1):
                    Linear(widths[i], widths[i + 1])
            for i in range(3):
                Linear(16, 16, bias=5)
            Linear(16, 16, bias=6)
            head out
    """) == [(5, 31, "layers.1: Linear: 'out_features' must be a positive integer, got 0"),
             (5, 20, "layers.2: Linear: 'in_features' must be a positive integer, got 0"),
             (7, 24, "linear: Linear: 'bias' must be true or false, got 5"),
             (8, 20, "Linear: 'bias' must be true or false, got 6")]
