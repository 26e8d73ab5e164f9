"""Text -> AST. Loads grammar.lark (LALR, Python-like indentation) and turns Lark's
tree into `dsl.ast` dataclasses with spans; Lark objects never leave this module.

Syntax errors become `Diagnostic`s with friendly messages ("missing ':' after the
block header"); after an error the parser blanks the offending statement and tries
again, so one run reports every syntax error of a file.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import DedentError, Indenter

from . import ast as A
from .errors import Diagnostic, NetspecError, Span, remember_source

MAX_SYNTAX_ERRORS = 20
RESERVED = {"block", "model", "default", "import", "from", "as", "input", "output", "head", "residual", "repeat",
            "for", "in", "if", "elif", "else", "pass", "and", "or", "not", "assert"}


class _Indenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark.open("grammar.lark", rel_to=__file__, parser="lalr", start=["start", "expr"],
                     lexer="basic", postlex=_Indenter(), propagate_positions=True, maybe_placeholders=True)


_TEMPLATE = re.compile(r"\{([^{}]*)\}")


@v_args(meta=True)
class _ToAst(Transformer):
    """One method per grammar rule / alias; each returns an AST node."""

    def __init__(self, file: str, line_shift: int = 0, col_shift: int = 0):
        super().__init__()
        self.file = file
        self.line_shift = line_shift  # for `{expr}` holes parsed on their own
        self.col_shift = col_shift

    # -- spans --
    def span(self, meta) -> Span:
        if self.line_shift:
            return Span(self.file, self.line_shift, meta.column + self.col_shift,
                        self.line_shift, meta.end_column + self.col_shift)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

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
            tree = _lark().parse(m.group(1), start="expr")
            sub = _ToAst(self.file, span.line, span.col + m.start(1) - 1)
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
        return (".".join(str(t) for t in ch), False)

    def import_module(self, meta, ch):
        (mod, is_path), alias = ch
        return A.Import(mod, is_path, str(alias) if alias else None, None, self.span(meta))

    def import_from(self, meta, ch):
        (mod, is_path), *names = ch
        return A.Import(mod, is_path, None, tuple((str(n), self.tspan(n)) for n in names),
                        self.span(meta))

    def def_stmt(self, meta, ch):
        default, kind, name, *rest = ch
        body = rest[-1]
        params = tuple(p for p in rest[:-1] if p is not None)
        return A.Def(str(kind), str(name), params, body, default is not None,
                     Span(self.file, kind.line, kind.column, name.end_line, name.end_column))

    def def_param(self, meta, ch):
        return A.Param(str(ch[0]), ch[1], self.span(meta))

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
        return A.Input(str(name), dtype, dims, self.span(meta))

    def tensor_type(self, meta, ch):
        dtype, *dims = ch
        return (str(dtype) if dtype else None, tuple(d for d in dims if d is not None))

    def dim_default(self, meta, ch):
        return A.Dim(str(ch[0]), ch[1], self.span(meta))

    def dim_expr(self, meta, ch):
        return A.Dim(None, ch[0], self.span(meta))

    def output_stmt(self, meta, ch):
        return A.Output(str(ch[0]), ch[1], self.span(meta))

    def head_stmt(self, meta, ch):
        name, expr, task, args = ch
        return A.Head(str(name), expr, str(task) if task else None, tuple(args or ()),
                      self.span(meta), self.tspan(task) if task else None)

    def assign_stmt(self, meta, ch):
        *targets, expr = ch
        return A.Assign(tuple(self.mkname(t) for t in targets), expr, self.span(meta))

    def step_stmt(self, meta, ch):
        label, choice, bind = ch
        import dataclasses
        return dataclasses.replace(choice, label=label, bind=self.mkname(bind) if bind else None,
                                   span=self.span(meta))

    def step_choice(self, meta, ch):
        """`A() if c else B() if d else C()`: a Step whose `orelse` may be conditional again."""
        (ref, args, inputs), cond, orelse = ch
        return A.Step(None, ref, args, inputs, None, self.span(meta), cond=cond, orelse=orelse)

    def step_target(self, meta, ch):
        return tuple(ch)

    def assert_stmt(self, meta, ch):
        return A.Assert(ch[0], ch[1], self.span(meta))

    def alias_def(self, meta, ch):
        default, kind, name, ref, args = ch
        return A.Def(str(kind), str(name), (), (), default is not None,
                     Span(self.file, kind.line, kind.column, name.end_line, name.end_column),
                     alias=(ref, tuple(args or ())))

    def label(self, meta, ch):
        return self.mkname(ch[0])

    def ref(self, meta, ch):
        return tuple(self.mkname(t) for t in ch)

    def call_args(self, meta, ch):
        return tuple(ch[0] or ())

    def merge_stmt(self, meta, ch):
        return A.Merge(str(ch[0]), ch[1], self.span(meta), bind=self.mkname(ch[2]) if ch[2] else None)

    def pass_stmt(self, meta, ch):
        return A.Pass(self.span(meta))

    def group_stmt(self, meta, ch):
        return A.Group(ch[0], ch[1], self.span(meta))

    def residual_stmt(self, meta, ch):
        return A.Residual(ch[0], self.span(meta))

    def for_stmt(self, meta, ch):
        return A.For(str(ch[0]), ch[1], ch[2], self.span(meta))

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
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return A.Number(value, self.span(meta))

    def string(self, meta, ch):
        return A.String(str(ch[0])[1:-1], self.span(meta))

    def ellipsis(self, meta, ch):
        return A.EllipsisLit(self.span(meta))

    def attr(self, meta, ch):
        return A.Attr(ch[0], str(ch[1]), self.span(meta))

    def call(self, meta, ch):
        return A.Call(ch[0], tuple(ch[1] or ()), self.span(meta))

    def arglist(self, meta, ch):
        return [c if isinstance(c, A.Arg) else A.Arg(None, c, c.span) for c in ch]

    def kwarg(self, meta, ch):
        return A.Arg(str(ch[0]), ch[1], self.span(meta))

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


# ---- friendly syntax errors ----
_TOKEN_WORDS = {
    "COLON": "':'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "EQUAL": "'='", "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "_NL": "end of line",
    "_INDENT": "an indented block", "_DEDENT": "end of the indented block", "DOT": "'.'",
    "ADDOP": "'+' or '-'", "MULOP": "an operator", "COMPOP": "a comparison", "SEMICOLON": "';'",
    "$END": "end of file",
}


def _word(tok_type: str) -> str:
    return _TOKEN_WORDS.get(tok_type, f"'{tok_type.lower()}'")


def _describe(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type in ("_INDENT", "_DEDENT"):
        return "indentation"
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _syntax_message(err: UnexpectedInput) -> str:
    if isinstance(err, UnexpectedCharacters):
        return f"unexpected character '{err.char}'"
    if isinstance(err, UnexpectedEOF):
        return "unexpected end of file"
    assert isinstance(err, UnexpectedToken)
    exp = set(err.expected)
    tok = err.token
    got = _describe(tok)
    if tok.type == "_INDENT":
        return "unexpected indentation"
    if "COLON" in exp and tok.type == "_NL":
        return "missing ':' at end of line"
    if "RPAR" in exp and tok.type in ("_NL", "$END", "COLON"):
        return "unclosed '(' : missing ')'"
    if "RSQB" in exp and tok.type in ("_NL", "$END"):
        return "unclosed '[' : missing ']'"
    if exp == {"_INDENT"} or ("_INDENT" in exp and len(exp) <= 2):
        return "expected an indented block"
    if "NAME" in exp and str(tok) in RESERVED:
        return f"'{tok}' is a reserved word and cannot be used as a name"
    if tok.type in ("BLOCK", "MODEL", "DEFAULT") or str(tok) in ("block", "model"):
        return f"'{tok}' definitions must start at the beginning of a line, outside other definitions"
    if tok.type == "NAME" and "SEMICOLON" in exp:
        return f"unexpected {got}: write one step per line, or separate steps with ';'"
    if tok.type == "NAME" and "_NL" in exp:
        return f"unexpected {got}: missing an operator or ',' before it?"
    words = sorted({_word(e) for e in exp if not e.startswith("__")})
    if len(words) > 6:
        return f"unexpected {got}"
    return f"unexpected {got}; expected {', '.join(words)}"


def _blank_statement(lines: list[str], line: int) -> bool:
    """Blank line `line` (1-based) and the indented suite under it; False if nothing to blank."""
    i = line - 1
    if i >= len(lines) or not lines[i].strip():
        # errors reported at end of line / file: blank the previous non-empty line
        while i >= 0 and (i >= len(lines) or not lines[i].strip()):
            i -= 1
        if i < 0:
            return False
    indent = len(lines[i].expandtabs(8)) - len(lines[i].expandtabs(8).lstrip())
    lines[i] = ""
    j = i + 1
    while j < len(lines):
        s = lines[j].expandtabs(8)
        if s.strip() and len(s) - len(s.lstrip()) <= indent:
            break
        lines[j] = ""
        j += 1
    return True


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse a whole spec file. Raises NetspecError with every syntax error found."""
    remember_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    errors: list[Diagnostic] = []
    lines = text.split("\n")
    current = text
    while True:
        try:
            tree = _lark().parse(current, start="start")
            break
        except (UnexpectedInput, DedentError) as err:
            if isinstance(err, DedentError):
                line = _dedent_line(current, err)
                errors.append(Diagnostic("error", "inconsistent indentation: this line matches no "
                                         "enclosing indentation level", Span(file, line, 1)))
            else:
                line = err.line if isinstance(err.line, int) and err.line > 0 else len(lines)
                col = err.column if isinstance(err.column, int) and err.column > 0 else 1
                opened = _open_bracket(lines, line, col)
                if opened is not None:  # the real mistake is the bracket never closed
                    line, col, ch = opened
                    errors.append(Diagnostic("error", f"unclosed '{ch}'", Span(file, line, col)))
                else:
                    if isinstance(err, UnexpectedToken) and err.token.type == "_NL":
                        col = _end_of_code(lines[line - 1]) if line <= len(lines) else col
                    elif isinstance(err, UnexpectedToken) and err.token.type == "_INDENT":
                        line, col = _next_code_line(lines, line)
                    errors.append(Diagnostic("error", _syntax_message(err), Span(file, line, col)))
            if len(errors) >= MAX_SYNTAX_ERRORS or not _blank_statement(lines, line):
                raise NetspecError(errors) from None
            current = "\n".join(lines)
    if errors:
        raise NetspecError(errors)
    try:
        module = _ToAst(file).transform(tree)
    except VisitError as err:  # a `{hole}` that is not an expression
        if isinstance(err.orig_exc, UnexpectedInput):
            raise NetspecError([Diagnostic("error", "bad expression inside '{...}' in a name",
                                           Span(file, err.obj.meta.line, err.obj.meta.column)
                                           if hasattr(err.obj, "meta") else None)]) from None
        raise
    return _attach_docs(module, text)


def _code_chars(lines, upto_line, upto_col):
    """(line, col, char) of each code character before a position, skipping strings and comments."""
    for n, text in enumerate(lines[:upto_line], 1):
        quote = None
        for c, ch in enumerate(text, 1):
            if n == upto_line and c >= upto_col:
                return
            if quote:
                quote = None if ch == quote else quote
                continue
            if ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            else:
                yield n, c, ch


def _open_bracket(lines, line, col):
    """The innermost bracket opened on an earlier line and still open at (line, col), if any."""
    stack = []
    for n, c, ch in _code_chars(lines, line, col):
        if ch in "([":
            stack.append((n, c, ch))
        elif ch in ")]" and stack:
            stack.pop()
    if stack and stack[-1][0] < line:
        return stack[-1]
    return None


def _next_code_line(lines, line):
    """(line, col) of the first code character after `line` (where an indentation error shows)."""
    for n in range(line + 1, len(lines) + 1):
        text = lines[n - 1]
        stripped = text.lstrip()
        if stripped and not stripped.startswith("#"):
            return n, len(text) - len(stripped) + 1
    return line, 1


def _end_of_code(text: str) -> int:
    """Column just after the last code character of a line (before a comment)."""
    last = 0
    for _, c, ch in _code_chars([text], 1, len(text) + 1):
        if not ch.isspace():
            last = c
    return last + 1


def _dedent_line(text: str, err: DedentError) -> int:
    """DedentError carries no position: find the first line whose indent matches no level."""
    levels = [0]
    for n, raw in enumerate(text.split("\n"), 1):
        s = raw.expandtabs(8)
        if not s.strip() or s.lstrip().startswith("#"):
            continue
        ind = len(s) - len(s.lstrip())
        if ind > levels[-1]:
            levels.append(ind)
            continue
        while ind < levels[-1]:
            levels.pop()
        if ind != levels[-1]:
            return n
    return 1


def parse_file(path) -> A.Module:
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetspecError([Diagnostic("error", f"no such file: {path}")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NetspecError([Diagnostic("error", f"cannot read {path}: {e}")]) from None
    return parse(text, str(path))


# ---- doc comments: `## text` above a statement or at its end ----
def _doc_map(text: str) -> tuple[dict[int, str], str | None, dict[int, int]]:
    lines = text.split("\n")
    docs: dict[int, str] = {}
    starts: dict[int, int] = {}  # statement line -> first line of its `##` block
    pending: list[str] = []
    top: list[str] | None = None
    for n, raw in enumerate(lines, 1):
        s = raw.strip()
        if s.startswith("##"):
            if not pending:
                start = n
            pending.append(s[2:].strip())
            continue
        if not s or s.startswith("#"):
            if not s and pending and top is None and not docs:
                top = pending  # a `##` block followed by a blank line documents the file
            pending = [] if not s else pending
            continue
        trailing = _trailing_doc(raw)
        got = pending + ([trailing] if trailing else [])
        if got:
            docs[n] = "\n".join(got)
            starts[n] = start if pending else n
        pending = []
    return docs, ("\n".join(top) if top else None), starts


def _trailing_doc(raw: str) -> str | None:
    quote = None
    for i, c in enumerate(raw):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif raw.startswith("##", i):
            return raw[i + 2:].strip()
        elif c == "#":
            return None
    return None


def _attach_docs(module: A.Module, text: str) -> A.Module:
    import dataclasses

    docs, top, starts = _doc_map(text)

    def walk(stmts):
        out = []
        for s in stmts:
            changes = {}
            if hasattr(s, "doc") and s.span.line in docs:
                changes["doc"] = docs[s.span.line]
            for field in ("body", "orelse"):
                val = getattr(s, field, None)
                if isinstance(val, tuple):
                    changes[field] = walk(val)
            if isinstance(s, A.If):
                changes["branches"] = tuple((c, walk(b)) for c, b in s.branches)
            out.append(dataclasses.replace(s, **changes) if changes else s)
        return tuple(out)

    defs = []
    for d in walk(module.defs):
        first = d.body[0] if d.body else None
        if d.doc is None and first is not None and first.doc and starts.get(first.span.line) == d.span.line + 1:
            # a `##` block opening a body documents the block, not its first statement
            d = dataclasses.replace(d, doc=first.doc, body=(dataclasses.replace(first, doc=None),) + d.body[1:])
        defs.append(d)
    return dataclasses.replace(module, defs=tuple(defs), doc=top)
