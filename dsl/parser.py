"""Text -> AST. Loads grammar.lark (LALR, Python-like indentation) and turns Lark's
tree into `dsl.ast` dataclasses with spans; Lark objects never leave this module (and
dsl/syntax_errors.py, its helper).

Syntax errors become `Diagnostic`s with friendly messages (dsl/syntax_errors.py); after an
error the parser blanks the offending statement and tries again, so one run reports every
syntax error of a file. Before any of it, the text's size and line lengths are checked;
brackets are counted as they are lexed and the tree's depth before it is transformed, so
nothing recursive ever meets more nesting than the `depth` limit. Doc comments are attached
by dsl/doc_comments.py.
"""
from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput
from lark.indenter import DedentError, Indenter

from . import ast as A
from . import limits
from .doc_comments import attach_docs
from .errors import Diagnostic, NetspecError, Source, Span
from .reading import check_lines, check_size, read_spec
from .syntax_errors import TooDeep, deep_error, syntax_tree, too_deep


class _Indenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def process(self, stream):
        depth, limit = 0, limits.get("depth")
        for tok in super().process(stream):
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
                if depth > limit:
                    raise TooDeep(tok)
            elif tok.type in ("RPAR", "RSQB"):
                depth -= 1
            yield tok


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark.open("grammar.lark", rel_to=__file__, parser="lalr", start=["start", "expr"],
                     lexer="basic", postlex=_Indenter(), propagate_positions=True, maybe_placeholders=True)


_TEMPLATE = re.compile(r"\{([^{}]*)\}")


@v_args(meta=True)
class _ToAst(Transformer):
    """One method per grammar rule / alias; each returns an AST node."""

    def __init__(self, source: Source, line_shift: int = 0, col_shift: int = 0, errors: list | None = None):
        super().__init__()
        self.source = source  # every span points at it, for the carets of diagnostics
        self.file = source.name
        self.line_shift = line_shift  # for `{expr}` holes parsed on their own
        self.col_shift = col_shift
        self.errors: list[Diagnostic] = [] if errors is None else errors  # found while building

    def error(self, message: str, span: Span) -> None:
        self.errors.append(Diagnostic("error", message, span))

    def plain(self, tok: Token) -> str:
        """A name that cannot be templated (a definition, a parameter, an input, a keyword)."""
        text = str(tok)
        if "{" in text:
            self.error(f"'{text}': only layer labels and bound names may have '{{...}}' parts", self.tspan(tok))
        return text

    # -- spans --
    def span(self, meta) -> Span:
        if self.line_shift:
            return Span(self.file, self.line_shift, meta.column + self.col_shift,
                        self.line_shift, meta.end_column + self.col_shift, self.source)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column, self.source)

    def tspan(self, tok: Token) -> Span:
        return self.span(tok)

    def name(self, meta, ch):
        return self.mkname(ch[0])

    def mkname(self, tok: Token) -> A.Name:
        text = str(tok)
        span = self.tspan(tok)
        if "{" not in text:
            return A.Name(text, (text,), span)
        parts, pos = [], 0
        for m in _TEMPLATE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            hole = Span(self.file, span.line, span.col + m.start(1) - 1, source=self.source)
            try:
                tree = _lark().parse(m.group(1), start="expr")
            except (UnexpectedInput, DedentError):
                self.error("bad expression inside '{...}' in a name", hole)
                return A.Name(text, (text,), span)
            except TooDeep:
                tree = None
            if tree is None or too_deep(tree) is not None:
                self.errors.append(deep_error(hole))
                return A.Name(text, (text,), span)
            sub = _ToAst(self.source, span.line, span.col + m.start(1) - 1, self.errors)
            parts.append(sub.transform(tree))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return A.Name(text, tuple(parts), span)

    # -- top level --
    def start(self, meta, ch):
        imports = tuple(c for c in ch if isinstance(c, A.Import))
        defs = tuple(c for c in ch if isinstance(c, A.Def))
        return A.Module(self.file, imports, defs)

    def module_path(self, meta, ch):
        return (str(ch[0])[1:-1], True)

    def module_dotted(self, meta, ch):
        return (".".join(self.plain(t) for t in ch), False)

    def import_module(self, meta, ch):
        (mod, is_path), alias = ch
        return A.Import(mod, is_path, self.plain(alias) if alias else None, None, self.span(meta))

    def import_from(self, meta, ch):
        (mod, is_path), *names = ch
        return A.Import(mod, is_path, None, tuple((self.plain(n), self.tspan(n)) for n in names),
                        self.span(meta))

    def def_stmt(self, meta, ch):
        default, kind, name, *rest = ch
        body = rest[-1]
        params = tuple(p for p in rest[:-1] if p is not None)
        return A.Def(str(kind), self.plain(name), params, body, default is not None,
                     Span(self.file, kind.line, kind.column, name.end_line, name.end_column, self.source))

    def def_param(self, meta, ch):
        return A.Param(self.plain(ch[0]), ch[1], self.span(meta))

    def suite(self, meta, ch):
        out = []
        for c in ch:
            out.extend(c if isinstance(c, list) else [c])
        return tuple(out)

    def simple_stmts(self, meta, ch):
        return list(ch)

    # -- statements --
    def input_stmt(self, meta, ch):
        name, ttype = ch
        dtype, dims = ttype if ttype else (None, None)
        return A.Input(self.plain(name), dtype, dims, self.span(meta))

    def tensor_type(self, meta, ch):
        dtype, *dims = ch
        return (self.plain(dtype) if dtype else None, tuple(d for d in dims if d is not None))

    def dim_default(self, meta, ch):
        return A.Dim(self.plain(ch[0]), ch[1], self.span(meta))

    def dim_expr(self, meta, ch):
        return A.Dim(None, ch[0], self.span(meta))

    def output_stmt(self, meta, ch):
        return A.Output(self.plain(ch[0]), ch[1], self.span(meta))

    def head_stmt(self, meta, ch):
        name, expr, task, args = ch
        return A.Head(self.plain(name), expr, self.plain(task) if task else None, tuple(args or ()),
                      self.span(meta), self.tspan(task) if task else None)

    def assign_stmt(self, meta, ch):
        *targets, expr = ch
        return A.Assign(tuple(self.mkname(t) for t in targets), expr, self.span(meta))

    def step_stmt(self, meta, ch):
        label, expr, bind = ch
        bind = self.mkname(bind) if bind else None
        step = self.as_step(expr)
        if step is None:  # `a + x`, `_[:, 0]`: computed, continues the flow
            return A.FlowExpr(expr, self.span(meta), label, bind)
        return dataclasses.replace(step, label=label, bind=bind, span=self.span(meta))

    def as_step(self, e) -> A.Step | None:
        """The expression of a statement as a Step when it has a step's form: `ref`,
        `ref(args)`, `ref(args)(inputs)`, or `A() if c else B()` of those (chained); else None."""
        if isinstance(e, A.IfExp):
            then, orelse = self.as_step(e.then), self.as_step(e.orelse)
            if then is None or orelse is None or then.cond is not None:
                return None
            return dataclasses.replace(then, cond=e.cond, orelse=orelse, span=e.span)
        args = inputs = None
        target = e
        if isinstance(target, A.Call) and isinstance(target.func, A.Call):
            target, inputs = target.func, target.args
        if isinstance(target, A.Call):
            target, args = target.func, target.args
        ref = self.ref_of(target)
        if ref is None:
            return None
        return A.Step(None, ref, args, inputs, None, e.span)

    def ref_of(self, e) -> tuple[A.Name, ...] | None:
        """`a.b.c` as its names (`resnet.Bottleneck`), else None."""
        parts = []
        while isinstance(e, A.Attr):
            sp = e.span  # the attribute's name is the last thing in the span
            col = sp.end_col - len(e.name) - (self.col_shift if self.line_shift else 0)
            parts.append(self.mkname(Token("NAME", e.name, line=sp.end_line, column=col,
                                           end_line=sp.end_line, end_column=col + len(e.name))))
            e = e.obj
        if not isinstance(e, A.Name):
            return None
        return (e,) + tuple(parts[::-1])

    def assert_stmt(self, meta, ch):
        return A.Assert(ch[0], ch[1], self.span(meta))

    def alias_def(self, meta, ch):
        default, kind, name, ref, args = ch
        return A.Def(str(kind), self.plain(name), (), (), default is not None,
                     Span(self.file, kind.line, kind.column, name.end_line, name.end_column, self.source),
                     alias=(ref, tuple(args or ())))

    def label(self, meta, ch):
        return self.mkname(ch[0])

    def label_word(self, meta, ch):
        return ch[0]  # `head:`: the keyword's token, as a name

    def ref(self, meta, ch):
        return tuple(self.mkname(t) for t in ch)

    def merge_stmt(self, meta, ch):
        return A.Merge(str(ch[0]), ch[1], self.span(meta), bind=self.mkname(ch[2]) if ch[2] else None)

    def pass_stmt(self, meta, ch):
        return A.Pass(self.span(meta))

    def group_stmt(self, meta, ch):
        return A.Group(ch[0], ch[1], self.span(meta))

    def residual_stmt(self, meta, ch):
        return A.Residual(ch[0], self.span(meta))

    def for_stmt(self, meta, ch):
        return A.For(self.plain(ch[0]), ch[1], ch[2], self.span(meta))

    def repeat_stmt(self, meta, ch):
        return A.Repeat(ch[0], ch[1], self.span(meta))

    def if_stmt(self, meta, ch):
        cond, body, *rest = ch
        branches = [(cond, body)]
        orelse = None
        for r in rest:
            if r is None:
                continue
            if r[0] == "elif":
                branches.append((r[1], r[2]))
            else:
                orelse = r[1]
        return A.If(tuple(branches), orelse, self.span(meta))

    def elif_clause(self, meta, ch):
        return ("elif", ch[0], ch[1])

    def else_clause(self, meta, ch):
        return ("else", ch[0])

    # -- expressions --
    def number(self, meta, ch):
        text = str(ch[0])
        span = self.span(meta)
        if any(c in text for c in ".eE"):
            value = float(text)
            if value == float("inf"):
                self.error(f"number too large: {text[:40]} is past the largest float (write `inf` for infinity)",
                           span)
                value = 0.0
            return A.Number(value, span)
        bits = limits.get("int_bits")
        # digits first: int() of a 5,000-digit literal is itself refused by Python
        if len(text.lstrip("0")) > bits * 0.302 + 2 or int(text).bit_length() > bits:
            self.error(limits.message("int_bits", f"integer {text[:40]}{'…' if len(text) > 40 else ''} too large"),
                       span)
            return A.Number(0, span)
        return A.Number(int(text), span)

    def string(self, meta, ch):
        return A.String(str(ch[0])[1:-1], self.span(meta))

    def ellipsis(self, meta, ch):
        return A.EllipsisLit(self.span(meta))

    def attr(self, meta, ch):
        return A.Attr(ch[0], self.plain(ch[1]), self.span(meta))

    def call(self, meta, ch):
        return A.Call(ch[0], tuple(ch[1] or ()), self.span(meta))

    def arglist(self, meta, ch):
        return [c if isinstance(c, A.Arg) else A.Arg(None, c, c.span) for c in ch]

    def kwarg(self, meta, ch):
        return A.Arg(self.plain(ch[0]), ch[1], self.span(meta))

    def index(self, meta, ch):
        return A.Index(ch[0], tuple(ch[1:]), self.span(meta))

    def slice(self, meta, ch):
        lo, hi, *step = ch
        return A.Slice(lo, hi, step[0] if step else None, self.span(meta))

    def binop(self, meta, ch):
        return A.BinOp(str(ch[1]), ch[0], ch[2], self.span(meta))

    def pow_op(self, meta, ch):
        return A.BinOp("**", ch[0], ch[2], self.span(meta))

    def unary(self, meta, ch):
        return A.Unary(str(ch[0]), ch[1], self.span(meta))

    def not_op(self, meta, ch):
        return A.Unary("not", ch[0], self.span(meta))

    def compare(self, meta, ch):
        return A.Compare(str(ch[1]), ch[0], ch[2], self.span(meta))

    def contains(self, meta, ch):
        return A.Compare("in", ch[0], ch[1], self.span(meta))

    def not_contains(self, meta, ch):
        return A.Compare("not in", ch[0], ch[1], self.span(meta))

    def and_op(self, meta, ch):
        return A.BoolOp("and", ch[0], ch[1], self.span(meta))

    def or_op(self, meta, ch):
        return A.BoolOp("or", ch[0], ch[1], self.span(meta))

    def ifexp(self, meta, ch):
        return A.IfExp(ch[1], ch[0], ch[2], self.span(meta))

    def tuple(self, meta, ch):
        return A.TupleLit(tuple(c for c in ch if c is not None), self.span(meta))

    def list(self, meta, ch):
        return A.ListLit(tuple(c for c in ch if c is not None), self.span(meta))


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse a whole spec file. Raises NetspecError with every syntax error found, or the
    limit (file size, line length, nesting) the text breaks."""
    source = Source(file, text)
    check_size(text, file, source)
    too_long = check_lines(text, source)
    if too_long:
        raise NetspecError(too_long)
    if not text.endswith("\n"):
        text += "\n"
    tree = syntax_tree(lambda t: _lark().parse(t, start="start"), text, source)
    return attach_docs(_ast_of(tree, file, source), text)


def _ast_of(tree, file: str, source: Source):
    """The AST of a parse tree, after checking how deeply it nests (the AST builder recurses)."""
    deep = too_deep(tree)
    if deep is not None:
        raise NetspecError([deep_error(Span(file, *deep, source=source))])
    builder = _ToAst(source)
    node = builder.transform(tree)
    if builder.errors:
        raise NetspecError(builder.errors)
    return node


def parse_file(path) -> A.Module:
    """Parse a spec file: a regular file, within the size limit, UTF-8 (located errors otherwise)."""
    return parse(read_spec(path), str(path))


def parse_expr(text: str, file: str = "<expr>") -> A.Expr:
    """Parse one expression on its own (a `--set` value). Raises NetspecError when the
    text is not an expression, or breaks a limit."""
    source = Source(file, text)
    bad = check_lines(text, source)
    if bad:
        raise NetspecError(bad)
    try:
        tree = _lark().parse(text, start="expr")
    except (UnexpectedInput, DedentError):
        raise NetspecError([Diagnostic("error", f"not an expression: {text}", Span(file, 1, 1, source=source))]) \
            from None
    except TooDeep as err:
        raise NetspecError([deep_error(Span(file, err.token.line, err.token.column, source=source))]) from None
    return _ast_of(tree, file, source)
