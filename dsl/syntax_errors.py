"""Friendly syntax errors: Lark's raw UnexpectedInput becomes a message a user can act
on ("missing ':' at end of line", "unclosed '('"), located where the mistake is; the
bookkeeping that lets the parser recover and report every syntax error of a file
(`syntax_tree`); and the nesting check that runs on Lark's tree before anything recursive
does (`too_deep`). Used by dsl/parser.py only: Lark objects go no further.
"""
from __future__ import annotations

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import DedentError

from . import limits
from .errors import Diagnostic, NetspecError, Source, Span

MAX_SYNTAX_ERRORS = 20
RESERVED = {"block", "model", "default", "import", "from", "as", "input", "output", "head", "residual", "repeat",
            "for", "in", "if", "elif", "else", "pass", "and", "or", "not", "assert"}


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


def syntax_message(err: UnexpectedInput) -> str:
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


def blank_statement(lines: list[str], line: int) -> bool:
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


def open_bracket(lines, line, col):
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


def next_code_line(lines, line):
    """(line, col) of the first code character after `line` (where an indentation error shows)."""
    for n in range(line + 1, len(lines) + 1):
        text = lines[n - 1]
        stripped = text.lstrip()
        if stripped and not stripped.startswith("#"):
            return n, len(text) - len(stripped) + 1
    return line, 1


def end_of_code(text: str) -> int:
    """Column just after the last code character of a line (before a comment)."""
    last = 0
    for _, c, ch in _code_chars([text], 1, len(text) + 1):
        if not ch.isspace():
            last = c
    return last + 1


def dedent_line(text: str, err: DedentError) -> int:
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


class TooDeep(Exception):
    """Brackets nested past the `depth` limit (redundant parentheses make no tree node, so
    the tree's depth cannot tell; the formatter and error recovery would recurse on them)."""

    def __init__(self, token: Token):
        self.token = token


# Syntax errors are recovered from by parsing again (the bad statement blanked). Each try
# costs up to the error's offset: past this many characters parsed in all, the rest of
# a large file is left for the next run.
_RECOVERY_CHARS = 512 * 1024


def syntax_tree(parse, text: str, source: Source):
    """Lark's tree of the whole text (`parse(text)`), or NetspecError with every syntax
    error found."""
    file = source.name
    errors: list[Diagnostic] = []
    lines = text.split("\n")
    current = text
    spent = 0
    while True:
        try:
            tree = parse(current)
            break
        except TooDeep as err:
            errors.append(deep_error(Span(file, err.token.line, err.token.column, source=source)))
            raise NetspecError(errors) from None
        except (UnexpectedInput, DedentError) as err:
            if isinstance(err, DedentError):
                line = dedent_line(current, err)
                errors.append(Diagnostic("error", "inconsistent indentation: this line matches no "
                                         "enclosing indentation level", Span(file, line, 1, source=source)))
            else:
                line = err.line if isinstance(err.line, int) and err.line > 0 else len(lines)
                col = err.column if isinstance(err.column, int) and err.column > 0 else 1
                opened = open_bracket(lines, line, col)
                if opened is not None:  # the real mistake is the bracket never closed
                    line, col, ch = opened
                    errors.append(Diagnostic("error", f"unclosed '{ch}'", Span(file, line, col, source=source)))
                else:
                    if isinstance(err, UnexpectedToken) and err.token.type == "_NL":
                        col = end_of_code(lines[line - 1]) if line <= len(lines) else col
                    elif isinstance(err, UnexpectedToken) and err.token.type == "_INDENT":
                        line, col = next_code_line(lines, line)
                    errors.append(Diagnostic("error", syntax_message(err), Span(file, line, col, source=source)))
            spent += sum(len(x) + 1 for x in lines[:line]) if len(current) > 4096 else len(current)
            if len(errors) >= min(MAX_SYNTAX_ERRORS, limits.get("errors")) or not blank_statement(lines, line):
                raise NetspecError(errors) from None
            if spent > _RECOVERY_CHARS:
                errors.append(Diagnostic("note", f"stopped looking for syntax errors after line {line} "
                                         "(a large file): fix these and run again"))
                raise NetspecError(errors) from None
            current = "\n".join(lines)
    if errors:
        raise NetspecError(errors)
    return tree


def too_deep(tree):
    """(line, col) of the first node, in source order, nested deeper than the `depth`
    limit; None when none is. Iterative: the check runs before anything recursive does."""
    limit = limits.get("depth")
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return _position(node)
        stack.extend((c, depth + 1) for c in reversed(node.children) if isinstance(c, Tree))
    return None


def _position(node) -> tuple[int, int]:
    while isinstance(node, Tree):
        meta = node.meta
        if not meta.empty:
            return meta.line, meta.column
        kids = [c for c in node.children if c is not None]
        if not kids:
            return 1, 1
        node = kids[0]
    return (node.line or 1, node.column or 1) if isinstance(node, Token) else (1, 1)


def deep_error(span: Span) -> Diagnostic:
    return Diagnostic("error", limits.message("depth", "nested too deeply"), span)
