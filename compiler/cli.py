"""The `netspec` command line: check, render, summary, compile, layers, and (from
compiler.train_cli) train, eval, sample.

Errors print as `FILE:LINE:COL: error: ...` with the source line and a caret and exit 1;
usage errors exit 2; no Python traceback reaches the user unless --debug is given.
torch is imported only by the commands that need it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _common(p: argparse.ArgumentParser, *, model=True, inputs=True):
    p.add_argument("file", help="a .nn spec file ('-' reads standard input)")
    if model:
        p.add_argument("--model", help="which model of the file (default: its `default model` or only model)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override model parameters, e.g. --set n_layer=4 bias=false")
    if inputs:
        p.add_argument("--input", dest="inputs", action="extend", nargs="+", default=[], metavar="NAME=SHAPE",
                       help="input size for shape inference, e.g. --input x=1x3x224x224")
    p.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search for imports")


def _color(stream) -> bool:
    return stream.isatty() and os.environ.get("NO_COLOR") is None


def _print_diags(diags, stream=None):
    stream = stream or sys.stderr
    for d in diags:
        print(d.format(color=_color(stream)), file=stream)


def _source(args):
    """The spec argument as (source, name for messages): a path, or '-' for standard input."""
    from pathlib import Path

    if args.file in ("-", "<stdin>"):
        if getattr(args, "text", None) is None:  # read once; --all checks several models of it
            args.text = sys.stdin.read()
        args.file = "<stdin>"
        return args.text, "<stdin>"
    return Path(args.file), None


def _analyze(args, model=None):
    from dsl.params import parse_input_shapes, parse_overrides

    from .builder import analyze
    source, name = _source(args)
    return analyze(source, model if model is not None else args.model,
                   parse_overrides(args.overrides), input_shapes=parse_input_shapes(getattr(args, "inputs", [])),
                   extra_paths=args.path, file=name)


def _shape(t) -> str:
    return "[" + ", ".join(str(d) for d in t) + "]"


def cmd_check(args) -> int:
    from dsl.errors import NetspecError
    from dsl.frontend import elaborate
    from dsl.loader import load
    from dsl.params import parse_overrides

    source, name = _source(args)
    if args.all:
        program = load(source, extra_paths=args.path, file=name)
        models = [d.name for d in program.models()]
        if not models:
            print(f"error: {args.file} defines no model (only blocks?)", file=sys.stderr)
            return EXIT_ERROR
    else:
        models = [args.model]
    failed = False
    for model in models:
        try:
            if args.no_shapes:
                checked = elaborate(source, model, parse_overrides(args.overrides), extra_paths=args.path,
                                    file=name)
                _print_diags(checked.warnings)
                g = checked.graph
                ins = ", ".join(op.id for op in g.inputs)
                heads = ", ".join(o.name for o in g.outputs)
                print(f"{args.file}: model {g.name} ok: inputs {ins}; heads {heads}")
                continue
            a = _analyze(args, model=model)
        except NetspecError as e:
            _print_diags(e.diagnostics)
            failed = True
            continue
        _print_diags(a.checked.warnings)
        info = a.info
        ins = ", ".join(f"{i.name} {i.dtype}{_shape(i.shape)}" for i in info.inputs)
        heads = ", ".join(f"{h.name}{_shape(h.shape or ())}" + (f" ({h.task})" if h.task else "") for h in info.heads)
        print(f"{args.file}: model {info.name} ok: inputs {ins}; heads {heads}; {a.num_params:,} parameters")
        if args.weights:  # keys and shapes against the meta model: nothing is allocated for the model
            from .weights import load_weights
            report = load_weights(a.module, args.weights, convert=args.convert)
            print(f"{args.weights}: all {len(report.loaded)} tensors fit model {info.name}")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_render(args) -> int:
    from dsl.render import render

    a = _analyze(args)
    _print_diags(a.checked.warnings)
    title = f"{a.info.name}  ({a.num_params:,} parameters)"
    out = render(a.graph, args.output, depth=args.depth, shapes=None if args.no_shapes else a.shapes, title=title)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_summary(args) -> int:
    from .summary import print_summary, summarize

    a = _analyze(args)
    _print_diags(a.checked.warnings)
    s = summarize(a, depth=args.depth)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_summary(s)
    return EXIT_OK


def cmd_compile(args) -> int:
    from dsl.params import parse_overrides

    from .eject import eject

    code = eject(_source(args)[0], args.model, parse_overrides(args.overrides), extra_paths=args.path,
                 class_name=args.class_name)
    if args.output == "-":
        sys.stdout.write(code)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(code)
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_layers(args) -> int:
    from dsl.registry import REGISTRY

    for name, d in sorted(REGISTRY.items(), key=lambda kv: (kv[1].kind, kv[0].lower())):
        sig = ", ".join(("*" if a.variadic else "") + a.name + ("" if a.required or a.variadic else f"={a.default!r}")
                        for a in d.schema)
        print(f"{d.kind:8} {d.category:10} {name}({sig})" + (f"  — {d.doc}" if d.doc else ""))
    return EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("netspec")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netspec", description="A graph-based architecture DSL and compiler for "
                                "neural networks: check, render, summarize, compile and train .nn specs.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    p.add_argument("--version", action="version", version=f"netspec {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="check a spec: names, arity, cycles, shapes; print its parameter count")
    _common(c)
    c.add_argument("--all", action="store_true", help="check every model of the file")
    c.add_argument("--no-shapes", action="store_true", help="structural checks only (no torch, no shapes)")
    c.add_argument("--weights", metavar="FILE", help="also check that a checkpoint (.safetensors / .pt) fits: "
                   "every key present, no extra keys, every shape equal")
    c.add_argument("--convert", choices=["transformers"], help="convert --weights from this naming first")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("render", help="draw the network with Graphviz (inputs at the bottom, heads at the top)")
    _common(r)
    r.add_argument("-o", "--output", required=True, help="output file: .svg, .png, .pdf or .dot")
    r.add_argument("--depth", type=int, default=None, help="collapse blocks nested deeper than N into one node")
    r.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    r.set_defaults(func=cmd_render)

    s = sub.add_parser("summary", help="per-layer table: output shapes, parameters, multiply-accumulates")
    _common(s)
    s.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    s.add_argument("--depth", type=int, default=None, help="show blocks nested deeper than N as one row")
    s.set_defaults(func=cmd_summary)

    k = sub.add_parser("compile", help="eject standalone PyTorch code (imports only torch)")
    _common(k, inputs=False)
    k.add_argument("-o", "--output", required=True, help="the .py file to write ('-' for stdout)")
    k.add_argument("--class-name", default=None, help="name of the generated nn.Module (default: the model's)")
    k.set_defaults(func=cmd_compile)

    l = sub.add_parser("layers", help="list the layers and tensor ops the language knows")
    l.set_defaults(func=cmd_layers)

    try:
        from .train_cli import register
    except ImportError:  # the training commands are optional until their module exists
        register = None
    if register is not None:
        register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from dsl.errors import NetspecError

    try:
        return args.func(args) or EXIT_OK
    except NetspecError as e:
        _print_diags(e.diagnostics)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print(f"error: {getattr(args, 'file', 'the spec')}: an expression is nested too deeply to compile "
              "(thousands of levels); split it into named steps", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug of ours or an environment problem: never a traceback by default
        if args.debug:
            raise
        kind = getattr(e, "user_error", False) or type(e).__name__ in ("DataError", "WeightsError", "ConfigError")
        msg = f"error: {e}" if kind else f"internal error: {type(e).__name__}: {e} (run with --debug for details)"
        print(msg, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
