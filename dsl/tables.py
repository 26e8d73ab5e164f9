"""The language's small vocabularies, each written once: dtypes, initializers, operators,
named constants, compile-time functions, and how an anonymous layer is named.

Plain data that imports nothing from netspec, so every stage reads the same table: the
elaborator checks spec text against it, the compiler lowers and ejects from it, the
trainer asks it which inputs are token ids. Layers and tensor ops have their own table
(dsl/registry.py), and so do head tasks (dsl/tasks.py).
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable

# ---- dtypes ----
# How a spec may write an input's dtype (`input idx: long[B, T]`) -> its canonical name,
# which is also the torch dtype's name (the compiler maps it with getattr(torch, name)).
DTYPES = {"float": "float32", "float32": "float32", "float16": "float16", "half": "float16",
          "bfloat16": "bfloat16", "float64": "float64", "double": "float64", "long": "int64",
          "int64": "int64", "int": "int64", "int32": "int32", "bool": "bool", "uint8": "uint8"}
DEFAULT_DTYPE = "float32"  # an input written without a dtype
DTYPE_NAMES = tuple(dict.fromkeys(DTYPES.values()))  # the canonical names, in table order
FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})  # inputs data feeds as floats
INT_DTYPES = frozenset({"int64", "int32", "uint8"})  # inputs data feeds as integer ids
# Symbolic input dims that may go without a default (`input x: float[B, 3, 32, 32]`): batch sizes, 1 when checked.
BATCH_DIMS = ("B", "N", "batch")


# ---- initializers: `init=normal(0.02)`, `bias_init=zeros` ----
@dataclass(frozen=True)
class Init:
    fn: str | None  # the torch.nn.init function it calls; None: the layer keeps torch's own init
    # the spec's (positional args, keyword dict) -> that function's (args after the tensor, kwargs)
    call: Callable[[tuple, dict], tuple[tuple, dict]]
    doc: str


def _none(a, kw):
    return (), {}


def _std(a, kw):
    return a[0] if a else kw.get("std", 1.0)


def _kaiming_normal(a, kw):
    return (), {"mode": kw.get("mode", "fan_in"), "nonlinearity": kw.get("nonlinearity", "relu")}


def _xavier(a, kw):
    return (), {"gain": kw.get("gain", 1.0)}


INITS: dict[str, Init] = {
    "normal": Init("normal_", lambda a, kw: ((), {"mean": kw.get("mean", 0.0), "std": _std(a, kw)}),
                   "normal(std) or normal(std=, mean=): a normal distribution"),
    "uniform": Init("uniform_", lambda a, kw: (tuple(a or (kw.get("a", 0.0), kw.get("b", 1.0))), {}),
                    "uniform(a, b): a uniform distribution on [a, b] (default [0, 1])"),
    "zeros": Init("zeros_", _none, "all zeros"),
    "ones": Init("ones_", _none, "all ones"),
    "constant": Init("constant_", lambda a, kw: ((a[0] if a else kw.get("val"),), {}), "constant(v): all v"),
    "kaiming": Init("kaiming_normal_", _kaiming_normal, "He normal (mode=, nonlinearity=)"),
    "kaiming_normal": Init("kaiming_normal_", _kaiming_normal, "He normal (mode=, nonlinearity=)"),
    "kaiming_uniform": Init("kaiming_uniform_",
                            lambda a, kw: ((), {"a": kw.get("a", math.sqrt(5)), "mode": kw.get("mode", "fan_in")}),
                            "He uniform (a=, mode=); torch's default for Linear and Conv"),
    "xavier": Init("xavier_uniform_", _xavier, "Glorot uniform (gain=)"),
    "xavier_normal": Init("xavier_normal_", _xavier, "Glorot normal (gain=)"),
    "xavier_uniform": Init("xavier_uniform_", _xavier, "Glorot uniform (gain=)"),
    "trunc_normal": Init("trunc_normal_", lambda a, kw: ((), {"std": _std(a, kw)}),
                         "trunc_normal(std): a normal distribution cut at ±2"),
    "orthogonal": Init("orthogonal_", _none, "a (semi-)orthogonal matrix"),
    "default": Init(None, _none, "the layer's own torch initialization"),
}


def init_call(spec) -> tuple[str, tuple, dict] | None:
    """The torch.nn.init call an init spec (`dsl.ir.InitSpec`) stands for: (function name,
    arguments after the tensor, keywords), or None for `default`."""
    row = INITS[spec.name]
    if row.fn is None:
        return None
    args, kwargs = row.call(tuple(spec.args), dict(spec.kwargs))
    return row.fn, args, kwargs


# ---- operators ----
@dataclass(frozen=True)
class Operator:
    symbol: str  # as a spec writes it: "+", "@", "<=", "not in"
    name: str | None  # the IR op's target (Python's operator name); None: compile-time values only
    fn: Callable  # folds constants during elaboration; lowering calls it on tensors


def _by_symbol(*ops: Operator) -> dict[str, Operator]:
    return {o.symbol: o for o in ops}


BINARY = _by_symbol(
    Operator("+", "add", operator.add), Operator("-", "sub", operator.sub), Operator("*", "mul", operator.mul),
    Operator("/", "truediv", operator.truediv), Operator("//", "floordiv", operator.floordiv),
    Operator("%", "mod", operator.mod), Operator("@", "matmul", operator.matmul), Operator("**", "pow", operator.pow))
COMPARISONS = _by_symbol(
    Operator("==", "eq", operator.eq), Operator("!=", "ne", operator.ne), Operator("<", "lt", operator.lt),
    Operator("<=", "le", operator.le), Operator(">", "gt", operator.gt), Operator(">=", "ge", operator.ge),
    Operator("in", None, lambda a, b: a in b), Operator("not in", None, lambda a, b: a not in b))
# Unary `+` on a tensor is the tensor itself, so it never becomes an op.
UNARY = _by_symbol(Operator("-", "neg", operator.neg), Operator("+", None, operator.pos),
                   Operator("not", None, operator.not_))
# IR op target -> the Python function lowering calls (binop ops, and the `neg` function op)
OPERATOR_FNS: dict[str, Callable] = {o.name: o.fn for table in (BINARY, COMPARISONS, UNARY)
                                     for o in table.values() if o.name is not None}


# ---- names a spec may use without defining them ----
CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None,
             "inf": math.inf, "pi": math.pi}

# Names with a value only at run time, read from the module: `a if training else b`,
# `dropout(p, training=training)` (functions that take `training` get it by default).
RUNTIME = {"training": "true while the model trains (model.train()), false in eval mode"}

# Attributes every compiled module has (torch.nn.Module, torch.fx.GraphModule, what netspec
# sets): a layer or group path part of one of these names would collide with it (`float:`
# would shadow Module.float). tests/compiler/test_tables.py keeps it a superset of torch's.
MODULE_ATTRIBUTES = frozenset((
    '___needs_generation_tag_patch', 'smart_apply',  # set on nn.Module by torch._dynamo once imported
    'T_destination', '_apply', '_backward_hooks', '_backward_pre_hooks', '_boxed_call', '_buffers',
    '_call_impl', '_code', '_compiled_call_impl', '_create_node_hooks', '_deepcopy_hooks', '_deepcopy_init',
    '_erase_node_hooks', '_forward_hooks', '_forward_hooks_always_called', '_forward_hooks_with_kwargs',
    '_forward_pre_hooks', '_forward_pre_hooks_with_kwargs', '_get_backward_hooks', '_get_backward_pre_hooks',
    '_get_name', '_graph', '_is_full_backward_hook', '_lineno_map', '_load_from_state_dict',
    '_load_state_dict_post_hooks', '_load_state_dict_pre_hooks', '_maybe_warn_non_full_backward_hook',
    '_modules', '_named_members', '_netspec_graph', '_non_persistent_buffers_set', '_parameters',
    '_prologue_start', '_recompile_submodules', '_register_create_node_hook', '_register_deepcopy_hook',
    '_register_erase_node_hook', '_register_load_state_dict_pre_hook', '_register_replace_node_hook',
    '_register_state_dict_hook', '_replace_hooks', '_replicate_for_data_parallel', '_save_to_state_dict',
    '_set_replace_hook', '_slow_forward', '_state_dict_hooks', '_state_dict_pre_hooks', '_tracer_cls',
    '_tracer_extras', '_unregister_create_node_hook', '_unregister_deepcopy_hook',
    '_unregister_erase_node_hook', '_unregister_replace_node_hook', '_version', '_wrapped_call',
    '_wrapped_call_impl', 'add_module', 'add_submodule', 'apply', 'bfloat16', 'buffers', 'call_super_init',
    'children', 'code', 'compile', 'cpu', 'cuda', 'delete_all_unused_submodules', 'delete_submodule', 'double',
    'dump_patches', 'eval', 'extra_repr', 'float', 'forward', 'get_buffer', 'get_extra_state', 'get_parameter',
    'get_submodule', 'graph', 'half', 'ipu', 'load_state_dict', 'meta', 'modules', 'mtia', 'named_buffers',
    'named_children', 'named_modules', 'named_parameters', 'netspec', 'parameters', 'print_readable',
    'recompile', 'register_backward_hook', 'register_buffer', 'register_forward_hook',
    'register_forward_pre_hook', 'register_full_backward_hook', 'register_full_backward_pre_hook',
    'register_load_state_dict_post_hook', 'register_load_state_dict_pre_hook', 'register_module',
    'register_parameter', 'register_state_dict_post_hook', 'register_state_dict_pre_hook', 'requires_grad_',
    'set_extra_state', 'set_submodule', 'shape_env', 'share_memory', 'state_dict', 'to', 'to_empty',
    'to_folder', 'train', 'training', 'type', 'xpu', 'zero_grad'
))

# Functions that fold at compile time when every argument is a constant: `d // heads`, `sqrt(d)`.
FOLD: dict[str, Callable] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos, "abs": abs,
    "min": min, "max": max, "int": int, "float": float, "round": round, "len": len,
    "range": lambda *a: list(range(*a)), "tuple": tuple, "list": list}


# ---- naming ----
def snake(name: str) -> str:
    """The module name of an anonymous layer: BatchNorm2d -> batch_norm2d, GELU -> gelu."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()
