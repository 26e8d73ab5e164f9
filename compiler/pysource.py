r'''Spec text written into Python source, always as data, never as code.

`netspec compile` writes a .py file that users import: every string that comes from a
spec (doc comments, names, file names, parameter values) goes through one of these, so no
spec can close a string early and have the rest run.

    docstring('A tiny MLP."""; import os')    -> '"""A tiny MLP.\"\"\"; import os"""'
    literal('relu')                          -> "'relu'"
    identifier('class')                      -> 'class_'
    attribute('self', 'blocks.0.attn')       -> 'self.blocks[0].attn'
'''
from __future__ import annotations

import ast
import keyword
import re

# Escaped in a docstring: the backslash (so no \N{...} or \x.. is read as an escape), the
# quote (so no run of three closes it), and every character that is not plain printable
# text (control characters, line and paragraph separators, bidirectional overrides).
_UNSAFE = re.compile(r'[\\"\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]')


def _escape(ch: str) -> str:
    if ch in '\\"':
        return "\\" + ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def docstring(text: str, indent: str = "") -> str:
    """`text` as a triple-quoted docstring at `indent`, its lines indented, every quote and
    backslash escaped. Checked by reading it back: it evaluates to `text` itself."""
    body = _UNSAFE.sub(lambda m: _escape(m.group()), text)
    body = body.replace("\n", "\n" + indent) if indent else body
    out = f'{indent}"""{body}"""'
    if ast.literal_eval(out.strip()) != text.replace("\n", "\n" + indent):  # pragma: no cover - by construction
        return indent + repr(text)
    return out


def literal(value: str) -> str:
    """A string as a Python literal (repr escapes quotes, backslashes, control characters)."""
    return repr(str(value))


def comment(text: str) -> str:
    """Text for a `# ...` comment: one line, whatever it holds."""
    return " ".join(_UNSAFE.sub("?", str(text)).split())


def identifier(name: str) -> str:
    """A spec name as a Python identifier: a keyword gets a trailing '_'; anything that is not
    an ASCII identifier is refused (names are checked when the spec is read; this is the
    guard at the door)."""
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"not a Python identifier: {name!r}")
    return name + "_" if keyword.iskeyword(name) else name


def attribute(root: str, path: str) -> str:
    """The expression reaching module `path` from `root`: `.name`, `[0]` for a ModuleList
    index, `getattr(..., 'name')` for a name that is not a plain attribute."""
    out = root
    for part in path.split("."):
        if part.isdigit():
            out += f"[{int(part)}]"
        elif part.isascii() and part.isidentifier() and not keyword.iskeyword(part):
            out += f".{part}"
        else:
            out = f"getattr({out}, {literal(part)})"
    return out
