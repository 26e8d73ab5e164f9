"""Parameter overrides from the command line: `--set d=256 bias=false layers=[2,2,2,2]`.

Values are netspec constant expressions (numbers, true/false, strings, lists,
arithmetic); a word that is not one (`--set block=basic`) is taken as a string.
Nothing is ever executed.
"""
from __future__ import annotations

from . import limits
from .errors import Diagnostic, Diagnostics, NetspecError
from .elaborate import const_value
from .parser import parse_expr


def parse_value(text: str):
    try:
        expr = parse_expr(text, "<--set>")
    except NetspecError:
        return text
    diags = Diagnostics()
    value = const_value(expr, diags)
    return text if diags.has_errors else value


def parse_overrides(items) -> dict:
    """["d=256", "bias=false"] -> {"d": 256, "bias": False}. Raises NetspecError on a bad item."""
    out = {}
    for item in items or ():
        for part in [item] if "=" in item and item.count("=") == 1 else [item]:
            key, eq, val = part.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise NetspecError([Diagnostic("error", f"--set takes NAME=VALUE, got '{part}'")])
            out[key] = parse_value(val.strip())
    return out


def parse_input_shapes(items) -> dict:
    """["x=1x3x224x224"] -> {"x": (1, 3, 224, 224)}."""
    out = {}
    for item in items or ():
        key, eq, val = item.partition("=")
        try:
            parts = val.lower().replace(",", "x").split("x")
            if any(len(d.strip()) > 20 for d in parts):  # int() of a 5,000-digit size is refused by Python
                raise ValueError
            dims = tuple(int(d) for d in parts)
            if not eq or not key.strip() or any(d <= 0 or d.bit_length() > limits.get("int_bits") for d in dims):
                raise ValueError
        except ValueError:
            raise NetspecError([Diagnostic("error", f"--input takes NAME=1x3x224x224, got '{item}'")]) from None
        out[key.strip()] = dims
    return out
