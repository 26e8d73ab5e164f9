"""The expression evaluator on its own, through the Scope protocol: constants fold,
tensor operations go to the scope as ops, an error is reported once and flows on as ERR."""
import math

import pytest

from netspec.dsl.elaborate import const_value
from netspec.dsl.errors import Diagnostics, NetspecError
from netspec.dsl.exprs import Evaluator
from netspec.dsl.ir import InitSpec, Ref
from netspec.dsl.parser import parse_expr
from netspec.dsl.tables import CONSTANTS
from netspec.dsl.values import ERR, LayerPath


class Tensors:
    """A Scope where `t` and `u` are tensors and `d` is 8; ops are recorded, not built."""

    def __init__(self):
        self.diags = Diagnostics()
        self.env = {"t": Ref("t"), "u": Ref("u"), "d": 8}
        self.ops = []

    def bound(self, name):
        return name in self.env

    def lookup(self, name, span):
        if name in self.env:
            return self.env[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        self.diags.error(f"undefined name '{name}'", span)
        return ERR

    def is_block(self, name):
        return name == "Block"

    def is_runtime(self, value):
        return False

    def add_call(self, kind, target, args, kwargs, span, *, label="", flow_input=None, id_hint=None):
        self.ops.append((kind, target, args, kwargs, label))
        return Ref(f"op{len(self.ops)}")

    def call_function(self, name, args, span, *, id_hint=None, flow_input=None):
        return self.add_call("function", name, tuple(v for _, v, _ in args),
                             {k: v for k, v, _ in args if k is not None}, span, label=name)


def ev(text, scope=None):
    scope = scope or Tensors()
    return Evaluator(scope).ev(parse_expr(text)), scope


@pytest.mark.parametrize("text, value", [
    ("d // 4 * 3", 6), ("2 ** 10 - 1", 1023), ("-d + +2", -6), ("7 % 3 == 1", True), ("not (d > 4)", False),
    ("[1, 2, 3][1:]", [2, 3]), ("(1, 2)[0]", 1), ("d if d in [4, 8] else 0", 8), ("sqrt(d * 2)", 4.0),
    ("max(3, d)", 8), ("len(range(0, d, 2))", 4), ("pi", math.pi), ("true and none", None), ('"a" != "b"', True),
])
def test_constants_fold(text, value):
    v, scope = ev(text)
    assert v == value and not scope.ops and not scope.diags.items


def test_tensor_operations_become_ops():
    v, scope = ev("t @ u.T * 2 + -t")
    assert isinstance(v, Ref)
    assert [(k, target, label) for k, target, _, _, label in scope.ops] == [
        ("function", "transpose", ".T"), ("binop", "matmul", "@"), ("binop", "mul", "*"),
        ("function", "neg", "-"), ("binop", "add", "+")]
    assert scope.ops[0][2][1:] == (-2, -1)


def test_functions_methods_and_indexing_go_to_the_scope():
    v, scope = ev("softmax(t[0, 1:], dim=-1).view(d, -1)")
    kinds = [(k, target) for k, target, _, _, _ in scope.ops]
    assert kinds == [("getitem", "getitem"), ("function", "softmax"), ("function", "view")]
    assert scope.ops[1][3] == {"dim": -1} and scope.ops[2][2][1:] == (8, -1)


def test_init_and_tie_keywords_name_things():
    v, scope = ev("softmax(t, init=normal(0.02, mean=1), bias_init=zeros, tie=transformer.wte)")
    (_, _, _, kwargs, _), = scope.ops
    assert kwargs["init"] == InitSpec("normal", (0.02,), (("mean", 1),))
    assert kwargs["bias_init"] == InitSpec("zeros")
    assert isinstance(kwargs["tie"], LayerPath) and kwargs["tie"].path == "transformer.wte"


@pytest.mark.parametrize("text, message", [
    ("x + 1", "undefined name 'x'"),
    ("t if t else u", "the condition of `a if c else b` must be known at compile time (or be `training`)"),
    ("not t", "'not' needs a compile-time value"),
    ("t in [1]", "'in' needs compile-time values"),
    ("1 / 0", "cannot compute 1 / 0: division by zero"),
    ("t.shap", "tensors have no attribute 'shap' (did you mean 'shape'?)"),
    ("t.view", "'view' is a method: write view(...)"),
    ("Block(4)", "'Block' is a layer: apply it as a step on its own line (`my_name: Block(...)`, or "
                 "`Block(...)(x)` for another input)"),
    ("Linear(4, 4)", "'Linear' is a layer: apply it as a step on its own line (`my_name: Linear(...)`, or "
                     "`Linear(...)(x)` for another input)"),
    ("sofmax(t)", "unknown function 'sofmax' (did you mean 'softmax'?)"),
])
def test_one_mistake_one_message(text, message):
    v, scope = ev(f"({text}) + t * 2")  # the error flows on through the rest, silently
    assert v is ERR and [d.message for d in scope.diags.items] == [message]


def test_compile_time_values_have_no_tensors():
    diags = Diagnostics()
    assert const_value(parse_expr("[d, 2 * d]"), diags, {"d": 3}) == [3, 6]
    assert const_value(parse_expr("softmax(d)"), diags, {"d": 3}) is ERR
    assert const_value(parse_expr("d.T"), diags, {"d": 3}) is ERR
    assert [d.message for d in diags.items] == [
        "'softmax' works on tensors; parameter values must be compile-time", "3 has no attribute 'T'"]


def test_parse_expr_rejects_what_is_not_an_expression():
    with pytest.raises(NetspecError, match="not an expression: a b"):
        parse_expr("a b")
