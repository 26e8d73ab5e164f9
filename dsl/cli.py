"""The language tooling's commands: `netspec fmt` and `netspec limits` (torch-free, like all
of netspec.dsl).

`netspec.cli` owns the command table and the error handling; `configure(name, parser)`
adds one command's arguments here.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from . import limits
from .errors import NetspecError, print_diagnostics
from .format import format_source
from .reading import read_spec, read_stream

EXIT_OK, EXIT_ERROR = 0, 1


def _files(args) -> list[str]:
    """The files named: paths, folders (every .nn under them) and '-' for standard input."""
    out: list[str] = []
    for name in args.files:
        p = Path(name)
        if name != "-" and p.is_dir():
            out += sorted(str(f) for f in p.rglob("*.nn"))
        else:
            out.append(name)
    return out


def cmd_fmt(args) -> int:
    changed = unchanged = failed = 0
    for name in _files(args):
        file = "<stdin>" if name == "-" else name
        try:
            text = read_stream(sys.stdin) if name == "-" else read_spec(name)
        except NetspecError as e:
            print_diagnostics(e.diagnostics, sys.stderr)
            failed += 1
            continue
        result = format_source(text, file)
        if result.diagnostics:
            print_diagnostics(result.diagnostics, sys.stderr)
            failed += 1
            continue
        changed += result.changed
        unchanged += not result.changed
        if args.diff and result.changed:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), result.after.splitlines(True),
                                                       f"{file} (original)", f"{file} (formatted)"))
        if args.check or args.diff:
            if args.check and result.changed:
                print(f"would reformat {file}", file=sys.stderr)
        elif name == "-":
            sys.stdout.write(result.after)
        elif result.changed:
            Path(name).write_text(result.after, encoding="utf-8")
            print(f"reformatted {file}", file=sys.stderr)
    if changed + unchanged + failed > 1:  # one file says enough by itself
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        print(f"{_n(changed)} {verb}, {_n(unchanged)} unchanged" + (f", {_n(failed)} failed" if failed else ""),
              file=sys.stderr)
    if failed:
        return EXIT_ERROR
    return EXIT_ERROR if args.check and changed else EXIT_OK


def _n(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


def _fmt_args(p: argparse.ArgumentParser):
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a .nn spec, a folder (every .nn under it), a Markdown file (its ```nn blocks) "
                        "or '-' (standard input, written to standard output)")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if a file is not formatted (and name it)")
    p.add_argument("--diff", action="store_true", help="change nothing; print what would change as a unified diff")
    return cmd_fmt


def cmd_limits(args) -> int:
    rows = [(lim.name, f"{limits.get(lim.name):,}", f"{lim.default:,}", lim.bounds)
            for lim in limits.LIMITS.values()]
    head = ("limit", "value", "default", "what it bounds")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
    for r in [head] + rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
    print("\nRaise one with --limit NAME=N (any command) or NETSPEC_LIMITS=NAME=N,NAME=N.")
    return EXIT_OK


# command -> function that adds its arguments and returns its handler
ARGUMENTS = {"fmt": _fmt_args, "limits": lambda p: cmd_limits}


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """Add command `name`'s arguments to its parser (called by netspec.cli)."""
    p.set_defaults(func=ARGUMENTS[name](p))
