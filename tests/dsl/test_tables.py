"""The small vocabularies (dsl/tables.py, dsl/tasks.py): each written once, and what the
elaborator makes of them."""
import operator
import textwrap

import pytest

from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.ir import InitSpec
from netspec.dsl.tables import (BINARY, COMPARISONS, DEFAULT_DTYPE, DTYPE_NAMES, DTYPES, FLOAT_DTYPES, INITS,
                                INT_DTYPES, OPERATOR_FNS, UNARY, init_call, snake)
from netspec.dsl.tasks import OUTPUTS, TASKS


def test_dtypes_spell_canonical_names():
    assert DTYPE_NAMES == ("float32", "float16", "bfloat16", "float64", "int64", "int32", "bool", "uint8")
    assert set(DTYPES.values()) == set(DTYPE_NAMES) and DEFAULT_DTYPE in DTYPE_NAMES
    assert FLOAT_DTYPES | INT_DTYPES == set(DTYPE_NAMES) - {"bool"} and not FLOAT_DTYPES & INT_DTYPES


@pytest.mark.parametrize("written, dtype", [("float", "float32"), ("half", "float16"), ("long", "int64"),
                                            ("double", "float64"), ("bool", "bool")])
def test_inputs_take_canonical_dtypes(written, dtype):
    g = elaborate(f"model M():\n    input x: {written}[B=1, 4]\n    head y = x\n").graph
    assert g.inputs[0].dtype == dtype and g.inputs[0].label == f"x: {dtype}"


def test_an_unknown_dtype_is_located():
    with pytest.raises(NetspecError) as e:
        elaborate("model M():\n    input x: flaot[B=1, 4]\n    head y = x\n")
    assert str(e.value).splitlines()[0] == "<string>:2:5: error: unknown dtype 'flaot' (did you mean 'float'?)"


@pytest.mark.parametrize("spec, call", [
    (InitSpec("normal", (0.02,)), ("normal_", (), {"mean": 0.0, "std": 0.02})),
    (InitSpec("normal", (), (("mean", 1), ("std", 0.5))), ("normal_", (), {"mean": 1, "std": 0.5})),
    (InitSpec("trunc_normal", (0.02,)), ("trunc_normal_", (), {"std": 0.02})),
    (InitSpec("uniform"), ("uniform_", (0.0, 1.0), {})),
    (InitSpec("uniform", (-1, 1)), ("uniform_", (-1, 1), {})),
    (InitSpec("constant", (0.5,)), ("constant_", (0.5,), {})),
    (InitSpec("zeros"), ("zeros_", (), {})),
    (InitSpec("kaiming"), ("kaiming_normal_", (), {"mode": "fan_in", "nonlinearity": "relu"})),
    (InitSpec("kaiming_normal", (), (("mode", "fan_out"),)),
     ("kaiming_normal_", (), {"mode": "fan_out", "nonlinearity": "relu"})),
    (InitSpec("xavier"), ("xavier_uniform_", (), {"gain": 1.0})),
    (InitSpec("orthogonal"), ("orthogonal_", (), {})),
    (InitSpec("default"), None),
])
def test_init_calls(spec, call):
    assert init_call(spec) == call


def test_every_init_is_checked_by_name():
    assert list(INITS) == ["normal", "uniform", "zeros", "ones", "constant", "kaiming", "kaiming_normal",
                           "kaiming_uniform", "xavier", "xavier_normal", "xavier_uniform", "trunc_normal",
                           "orthogonal", "default"]
    with pytest.raises(NetspecError) as e:
        elaborate("model M():\n    input x: float[B=1, 4]\n    Linear(4, 4, init=xavir)\n    head y\n")
    assert str(e.value).splitlines()[0] == \
        "<string>:3:18: error: unknown init 'xavir' (did you mean 'xavier'?)"


def test_operators_fold_like_python_and_lower_by_name():
    for table in (BINARY, COMPARISONS):
        for op in table.values():
            if op.name is not None:
                assert op.fn is getattr(operator, op.name) and OPERATOR_FNS[op.name] is op.fn
    assert BINARY["//"].fn(7, 2) == 3 and COMPARISONS["not in"].fn(1, [2]) and UNARY["-"].fn(3) == -3
    assert set(OPERATOR_FNS) == {"add", "sub", "mul", "truediv", "floordiv", "mod", "matmul", "pow",
                                 "eq", "ne", "lt", "le", "gt", "ge", "neg"}


@pytest.mark.parametrize("name, snake_name", [("Linear", "linear"), ("BatchNorm2d", "batch_norm2d"),
                                               ("GELU", "gelu"), ("MultiheadAttention", "multihead_attention"),
                                               ("ConvTranspose2d", "conv_transpose2d"), ("LSTM", "lstm")])
def test_anonymous_layers_are_named_in_snake_case(name, snake_name):
    assert snake(name) == snake_name


def test_tasks_table():
    assert list(TASKS) == ["classify", "lm", "seq2seq", "segment", "reconstruct", "regress", "adversarial"]
    assert all(t.output in OUTPUTS and t.arg("weight") is not None for t in TASKS.values())
    with pytest.raises(NetspecError) as e:
        elaborate(textwrap.dedent("""\
            model M():
                input x: float[B=1, 4]
                head y: clasify
        """))
    assert str(e.value).splitlines()[0] == ("<string>:3:13: error: unknown task 'clasify' (did you mean "
                                            "'classify'?); tasks: classify, lm, seq2seq, segment, reconstruct, "
                                            "regress, adversarial")
