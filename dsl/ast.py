"""The netspec AST: plain frozen dataclasses, each with the `span` it came from.

Built by `dsl.parser` from Lark's parse tree (Lark objects never leave the parser)
and consumed by `dsl.elaborate`. Statements mirror the grammar one to one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import Span


# ---- expressions ----
@dataclass(frozen=True)
class Name:
    id: str  # the raw text, e.g. "layer{i+1}"
    parts: tuple  # str pieces and Expr holes: ("layer", <BinOp i+1>)
    span: Span


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Attr:
    obj: "Expr"
    name: str
    span: Span


@dataclass(frozen=True)
class Arg:
    name: str | None  # keyword, or None for a positional argument
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: "Expr"
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Slice:
    lo: "Expr | None"
    hi: "Expr | None"
    step: "Expr | None"
    span: Span


@dataclass(frozen=True)
class EllipsisLit:
    span: Span


@dataclass(frozen=True)
class Index:
    obj: "Expr"
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // % @ **
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str  # + - not
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class IfExp:
    cond: "Expr"
    then: "Expr"
    orelse: "Expr"
    span: Span


@dataclass(frozen=True)
class TupleLit:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span


Expr = Union[Name, Number, String, Attr, Call, Slice, EllipsisLit, Index, BinOp, Unary,
             Compare, BoolOp, IfExp, TupleLit, ListLit]


# ---- statements ----
@dataclass(frozen=True)
class Dim:
    name: str | None  # symbolic dim bound here ("B" in `B=1`), or None
    expr: Expr | None  # its default, or the dim itself (`3`, `n_embd`, `T`)
    span: Span


@dataclass(frozen=True)
class Input:
    name: str
    dtype: str | None  # "float", "long", ... or None (float)
    dims: tuple[Dim, ...] | None  # None: shape not declared
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Output:
    name: str
    expr: Expr | None  # None: the current flow
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Head:
    name: str
    expr: Expr | None
    task: str | None  # "classify", "lm", ... or None
    task_args: tuple[Arg, ...]
    span: Span
    task_span: Span | None = None
    doc: str | None = None


@dataclass(frozen=True)
class Assign:
    targets: tuple[Name, ...]
    expr: Expr
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Step:
    """`[label:] Ref[(args)][(inputs)] [as name]` applied to the flow (or to `inputs`)."""
    label: Name | None
    ref: tuple[Name, ...]  # dotted: ("resnet", "Bottleneck")
    args: tuple[Arg, ...] | None  # None: written without parentheses
    inputs: tuple[Arg, ...] | None  # None: the current flow
    bind: Name | None
    span: Span
    doc: str | None = None
    cond: "Expr | None" = None  # `Tanh() if act == "tanh" else ReLU()`: the condition
    orelse: "Step | None" = None  # ... and the step used when it is false

    @property
    def ref_text(self) -> str:
        return ".".join(n.id for n in self.ref)


@dataclass(frozen=True)
class FlowExpr:
    """An expression on a line of its own (`a + x`, `_[:, 0]`): computed, and the tensor
    it gives continues the flow."""
    expr: Expr
    span: Span
    label: Name | None = None  # written but refused: a label names a layer, `=` a value
    bind: Name | None = None  # `_ * s as y`
    doc: str | None = None


@dataclass(frozen=True)
class Merge:
    op: str  # + - * / @ ...
    expr: Expr
    span: Span
    doc: str | None = None
    bind: Name | None = None  # `+x as x` rebinds x to the sum


@dataclass(frozen=True)
class Assert:
    cond: Expr  # must hold at compile time
    message: Expr | None
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Pass:
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Group:
    label: Name  # a named sequential container: members become label.0, label.1, ...
    body: tuple
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Residual:
    body: tuple  # output = body(flow) + flow
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class For:
    var: str
    iter: Expr
    body: tuple
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class Repeat:
    count: Expr
    body: tuple
    span: Span
    doc: str | None = None


@dataclass(frozen=True)
class If:
    branches: tuple[tuple[Expr, tuple], ...]  # (condition, body), if then elifs
    orelse: tuple | None
    span: Span
    doc: str | None = None


Stmt = Union[Input, Output, Head, Assign, Step, FlowExpr, Merge, Pass, Assert, Group, Residual, For, Repeat, If]


# ---- top level ----
@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Def:
    kind: str  # "block" | "model"
    name: str
    params: tuple[Param, ...]
    body: tuple
    default: bool  # `default model ...`
    span: Span  # the whole definition's header
    doc: str | None = None
    alias: tuple | None = None  # `model ResNet18 = ResNet(layers=[2, 2, 2, 2])`: (ref names, args)


@dataclass(frozen=True)
class Import:
    module: str  # "resnet" / "stdlib.resnet" or a path "common.nn"
    is_path: bool
    alias: str | None  # `import x as y`
    names: tuple[tuple[str, Span], ...] | None  # `from x import a, b`; None for `import x`
    span: Span


@dataclass(frozen=True)
class Module:
    file: str
    imports: tuple[Import, ...]
    defs: tuple[Def, ...]
    doc: str | None = None  # the `##` comment block at the top of the file
