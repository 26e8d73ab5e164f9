"""The `netspec` command: one table of subcommands, each configured by the stage that owns it.

`netspec check` must start fast, so the parser is built for the one command asked
for: only that command's module is imported (`check` never imports the training
package, scikit-learn or matplotlib). Every user error is a `NetspecError`, caught
here once and printed as `FILE:LINE:COL: error: ...` with the source line and a
caret (exit 1); usage errors exit 2; anything else is an internal error whose
traceback `--debug` (before or after the subcommand) shows. Options that take NAME=VALUE
items (`--set`, `--input`) take only the words with an `=`, so FILE may follow them.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# name -> (module whose configure(name, parser) adds its arguments, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("netspec.compiler.cli", "check a spec: names, arity, cycles, shapes; print its parameter count"),
    "render": ("netspec.compiler.cli", "draw the network with Graphviz (inputs at the bottom, heads at the top)"),
    "summary": ("netspec.compiler.cli", "per-layer table: output shapes, parameters, multiply-accumulates"),
    "compile": ("netspec.compiler.cli", "eject standalone PyTorch code (imports only torch)"),
    "layers": ("netspec.compiler.cli", "list the layers, tensor ops and head tasks the language knows"),
    "models": ("netspec.compiler.cli", "list the models of the standard library with parameter counts"),
    "fmt": ("netspec.dsl.cli", "format specs in the one canonical layout (comments kept, meaning unchanged)"),
    "lsp": ("netspec.lsp", "run the language server on standard input/output (for editors)"),
    "serve": ("netspec.serve", "show the diagram in a browser, redrawn each time the spec is saved"),
    "export": ("netspec.export", "write a spec's model, or a trained run's, as ONNX (checked with onnxruntime)"),
    "limits": ("netspec.dsl.cli", "list the limits on what a spec may ask (file size, nesting, loops, layers, ...)"),
    "train": ("netspec.train.cli", "train a model of a spec and write a run folder"),
    "eval": ("netspec.train.cli", "evaluate a trained run on its validation split (a GAN: its critic, --judge)"),
    "sample": ("netspec.train.cli", "generate from a trained run: text (lm), a decoded target (seq2seq), an image grid (GAN)"),
    "predict": ("netspec.train.cli", "run a trained model on new inputs: images, vectors (.csv / .npy) or prompts"),
    "completion": ("netspec.completion", "print a shell completion script (bash or zsh)"),
}


def _missing_extra(module: str | None) -> str | None:
    """The one-line error for a module that an optional extra brings, or None. Each
    extra's table lives with the stage that needs it (read only when one is missing)."""
    root = (module or "").split(".")[0]
    from .lsp import EXTRAS as LSP_EXTRAS, missing_message as lsp_message

    if root in LSP_EXTRAS:
        return lsp_message(root)
    from .train.extras import EXTRAS as TRAIN_EXTRAS, missing_message as train_message

    return train_message(root) if root in TRAIN_EXTRAS else None


def _version() -> str:
    import netspec
    return netspec.__version__


def build_parser(command: str | None = None, *, all_commands: bool = False) -> argparse.ArgumentParser:
    """The argument parser; only `command`'s arguments are configured (all listed in --help),
    or every command's with all_commands (shell completion reads them all)."""
    p = argparse.ArgumentParser(
        prog="netspec",
        description="A graph-based architecture DSL and compiler for neural networks: check, render, "
                    "summarize, compile and train .nn specs.",
        epilog="A FILE is a spec path, '-' for standard input, or a standard-library name "
               "(`netspec models` lists them). Run `netspec COMMAND --help` for a command's options.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors "
                   "(also accepted after the subcommand)")
    p.add_argument("--version", action="version", version=f"netspec {_version()}")
    p.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                   help="raise (or lower) one of the limits on what a spec may ask, e.g. --limit layers=50000 "
                        "(`netspec limits` lists them; also accepted after the subcommand, and from "
                        "$NETSPEC_LIMITS as NAME=N,NAME=N)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        if name == command or all_commands:
            import_module(module).configure(name, sp)
    return p


def _command_in(argv: list[str]) -> str | None:
    """The subcommand: the first argument that is not an option (options before it take no value)."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    """The parser of `command` inside the main parser (None when no command was given)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


def _pair_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings that take one or more NAME=VALUE items (`--set K=V ...`, `--input NAME=SHAPE ...`)."""
    return {o for a in parser._actions if a.nargs == "+" and "=" in str(a.metavar or "")
            for o in a.option_strings}


def split_pairs(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--set a=1 b=2 FILE` -> `--set=a=1 --set=b=2 FILE`: a NAME=VALUE option takes the items
    that have an `=`, so the first word without one (the spec FILE) is left to its own argument,
    wherever the option stands. An option followed by no item at all is a usage error."""
    options = _pair_options(parser)
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            out += argv[i - 1:]
            break
        if a not in options:
            out.append(a)
            continue
        items = []
        while i < len(argv) and "=" in argv[i] and not argv[i].startswith("-"):
            items.append(argv[i])
            i += 1
        if not items:
            got = f"got '{argv[i]}'" if i < len(argv) else "got nothing"
            parser.error(f"argument {a}: expected NAME=VALUE items after it, {got}")
        out += [f"{a}={item}" for item in items]
    return out
def _take_limits(argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv without them, the NAME=N of every --limit), wherever they stand."""
    rest, settings, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            break
        if a == "--limit" and i + 1 < len(argv):
            settings.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--limit="):
            settings.append(a[len("--limit="):])
        else:
            rest.append(a)
        i += 1
    return rest, settings


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv, limit_settings = _take_limits([a for a in argv if a != "--debug"])
    command = _command_in(argv)
    parser = build_parser(command)
    sub = _subparser(parser, command)
    if sub is not None:
        argv = split_pairs(argv, sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE

    from .dsl import limits

    try:
        limits.current()  # $NETSPEC_LIMITS, read now so a mistake in it is a usage error
        for text in limit_settings:
            limits.parse_setting(text, "--limit")
    except ValueError as e:
        parser.error(str(e))
    with limits.process_limits(limit_settings):
        # Nesting is refused past the `depth` limit before anything recursive runs; a raised
        # limit gets the Python stack to match (about ten frames a level).
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000 + 12 * limits.get("depth")))
        try:
            return _run(args, debug)
        except BrokenPipeError as e:  # output piped into `head`: quiet, failing only if errors were cut off
            _quiet_stdout()
            return EXIT_ERROR if getattr(e, "netspec_failed", False) else EXIT_OK


def _quiet_stdout() -> None:
    """After a closed pipe, Python's last flush at exit would complain again: point stdout at nothing."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's or an embedder's stream)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def _run(args, debug: bool) -> int:
    from .dsl.errors import NetspecError

    try:
        return args.func(args) or EXIT_OK
    except NetspecError as e:
        _print_diagnostics(e.diagnostics)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except ModuleNotFoundError as e:  # netspec.train raises MissingExtraError; this catches any other path
        message = _missing_extra(e.name)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug of ours or of the environment: never a traceback unless asked
        if debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (run with --debug for details)", file=sys.stderr)
        return EXIT_ERROR


def _print_diagnostics(diagnostics, stream=None) -> None:
    from .dsl.errors import print_diagnostics
    print_diagnostics(diagnostics, stream or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
