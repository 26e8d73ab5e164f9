"""Limits on the work and memory one spec may ask of netspec: one table, read by every stage.

A spec is a program: `repeat 10**9:`, `"a" * 10**10`, a 1,000-level expression or a 50 MB
line would otherwise hang netspec or exhaust memory. Each limit is checked *before* the
work or allocation it bounds, and breaking one is an error at the spec line that asks for
too much, naming the limit and how to raise it:

    big.nn:3:12: error: repeat 1000000000 times: over the limit of 10,000 loop iterations
    per model (raise it with --limit iterations=N)

A limit is raised (or lowered) for one command with `netspec --limit NAME=N ...` (any
number of times, before or after the command), for a shell with
`NETSPEC_LIMITS="iterations=100000,layers=50000"`, and in Python with
`with limits.raised(iterations=100_000): ...`. The defaults are far above what real
networks need (the largest shipped spec is 7 KB, GPT-2 XL is 48 blocks of 24 ops).
"""
from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Limit:
    name: str  # as --limit NAME=N and NETSPEC_LIMITS take it
    default: int
    unit: str  # how a value reads in a message: "10,000 loop iterations per model"
    bounds: str  # what it bounds (docs/RELIABILITY.md, `netspec limits`)


LIMITS: dict[str, Limit] = {lim.name: lim for lim in (
    Limit("file_size", 128 * 1024, "bytes per spec file",
          "the size of one spec file (the main file, each import, standard input)"),
    Limit("line_length", 10_000, "characters per line", "the length of one line of a spec"),
    Limit("depth", 100, "levels of nesting",
          "how deeply expressions and statements nest (brackets, operators, indented blocks), "
          "and lists inside lists"),
    Limit("nesting", 32, "levels of blocks inside blocks", "how deeply blocks are instantiated inside blocks"),
    Limit("int_bits", 63, "bits per integer",
          "the size of an integer, written or computed (torch sizes are 64-bit integers)"),
    Limit("elements", 10_000, "elements per value",
          "the size of one compile-time value: a list, tuple, range or string (nested ones counted in full)"),
    Limit("total_elements", 1_000_000, "elements computed per model",
          "the elements of every compile-time value one model computes, added up (what a loop "
          "that builds lists costs)"),
    Limit("iterations", 10_000, "loop iterations per model",
          "the iterations of every `repeat` and `for` of one model, all blocks together"),
    Limit("layers", 10_000, "layers and ops per model",
          "the layers and tensor ops of one model, every instance of a block counted"),
    Limit("errors", 50, "errors", "the errors reported before netspec stops looking for more"),
)}

# Values set for this process (the CLI's --limit); a `raised()` context wins over them.
_process: dict[str, int] = {}
_context: ContextVar[dict[str, int] | None] = ContextVar("netspec_limits", default=None)


def get(name: str) -> int:
    """The limit in force: a `raised()` context, then --limit, then $NETSPEC_LIMITS, then the default."""
    ctx = _context.get()
    if ctx is not None and name in ctx:
        return ctx[name]
    if name in _process:
        return _process[name]
    env = _from_env(os.environ.get("NETSPEC_LIMITS", ""))
    return env.get(name, LIMITS[name].default)


def current() -> dict[str, int]:
    """Every limit's value in force now."""
    return {name: get(name) for name in LIMITS}


@contextmanager
def raised(**values: int):
    """Limits for the code inside the `with` (this thread or task only): `raised(layers=50_000)`."""
    for name, value in values.items():
        _check(name, value, "raised()")
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def process_limits(settings: list[str]):
    """`--limit NAME=N` settings for one run of the CLI, in every thread it starts (a
    `raised()` context is for one thread only). Raises ValueError for a bad setting."""
    parsed = dict(parse_setting(text, "--limit") for text in settings)
    saved = dict(_process)
    _process.update(parsed)
    try:
        yield
    finally:
        _process.clear()
        _process.update(saved)


def parse_setting(text: str, where: str) -> tuple[str, int]:
    """'layers=50000' -> ("layers", 50000); ValueError naming the limits for a bad one."""
    name, eq, value = text.partition("=")
    name = name.strip()
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        number = None
    if not eq or number is None:
        raise ValueError(f"{where} takes NAME=N (a whole number), got '{text}'; limits: {', '.join(LIMITS)}")
    _check(name, number, where)
    return name, number


def _check(name: str, value, where: str) -> None:
    if name not in LIMITS:
        close = difflib.get_close_matches(name, LIMITS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"{where}: no limit '{name}'{hint}; limits: {', '.join(LIMITS)}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: limit '{name}' must be a positive whole number, got {value!r}")


@lru_cache(maxsize=8)
def _from_env(text: str) -> dict[str, int]:
    out = {}
    for item in text.replace(";", ",").split(","):
        if item.strip():
            name, value = parse_setting(item.strip(), "NETSPEC_LIMITS")
            out[name] = value
    return out


def message(name: str, what: str) -> str:
    """'WHAT: over the limit of 10,000 loop iterations per model (raise it with --limit iterations=N)'."""
    return f"{what}: over the limit of {get(name):,} {LIMITS[name].unit} {how_to_raise(name)}"


def how_to_raise(name: str) -> str:
    return f"(raise it with --limit {name}=N)"
