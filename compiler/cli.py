"""The compiler's commands: check, render, summary, compile, layers, models.

`netspec.cli` owns the command table and the error handling; `configure(name, parser)`
adds one command's arguments here. torch is imported only by the commands that need it.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys

EXIT_OK, EXIT_ERROR = 0, 1


def spec_options(p: argparse.ArgumentParser, *, model=True, inputs=True, optional_file=False):
    """The spec argument and the options that pick and size its model (every command shares them)."""
    p.add_argument("file", nargs="?" if optional_file else None,
                   help="a .nn spec file, a standard-library name (gpt2, resnet, ResNet50) or '-' for standard input")
    if model:
        p.add_argument("--model", help="which model of the file (default: its `default model` or only model)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override model parameters, e.g. --set n_layer=4 bias=false")
    if inputs:
        p.add_argument("--input", dest="inputs", action="extend", nargs="+", default=[], metavar="NAME=SHAPE",
                       help="input size for shape inference, e.g. --input x=1x3x224x224")
    p.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search for imports")


def _print_diags(diags, stream=None):
    from ..dsl.errors import print_diagnostics
    print_diagnostics(diags, stream or sys.stderr)


def _source(args):
    """The spec argument as (source, name for messages): a path or stdlib name, or '-' for
    standard input."""
    if args.file in ("-", "<stdin>"):
        if getattr(args, "text", None) is None:  # read once; --all checks several models of it
            from ..dsl.reading import read_stream
            args.text = read_stream(sys.stdin)
        args.file = "<stdin>"
        return args.text, "<stdin>"
    return args.file, None


def _analyze(args, model=None):
    from ..dsl.frontend import elaborate
    from ..dsl.params import parse_input_shapes, parse_overrides

    source, name = _source(args)
    model = model if model is not None else args.model
    overrides = parse_overrides(args.overrides)
    input_shapes = parse_input_shapes(getattr(args, "inputs", []))
    # The front end first, without torch: a spec error (or a limit) is reported in a
    # fraction of a second and a fraction of the memory importing torch takes.
    checked = elaborate(source, model, overrides, extra_paths=args.path, file=name)
    from .builder import analyze
    return analyze(source, model, overrides, input_shapes=input_shapes, extra_paths=args.path, file=name,
                   checked=checked)


def _shape(t) -> str:
    return "[" + ", ".join(str(d) for d in t) + "]"


def cmd_check(args) -> int:
    from ..dsl.errors import NetspecError
    from ..dsl.frontend import elaborate
    from ..dsl.library import resolve_source
    from ..dsl.lints import explain, find
    from ..dsl.loader import load
    from ..dsl.params import parse_overrides

    from .report import CheckReport

    if args.explain is not None:
        print(explain(find(args.explain)), end="")
        return EXIT_OK
    silenced = {find(c).code for c in args.no_lint}
    source, name = _source(args)
    report = CheckReport(args.json, silenced)
    if args.all:
        source, _ = resolve_source(source)
        try:
            program = load(source, extra_paths=args.path, file=name)
        except NetspecError as e:
            return report.failed(e.diagnostics)
        models = [d.name for d in program.models()]
        if not models:
            return report.failed([], f"error: {args.file} defines no model (only blocks?)")
    else:
        models = [args.model]
    for model in models:
        try:
            if args.no_shapes:
                checked = elaborate(source, model, parse_overrides(args.overrides), extra_paths=args.path,
                                    file=name)
                g = checked.graph
                report.model(checked.warnings, {"name": g.name, "inputs": [op.id for op in g.inputs],
                                                "heads": [o.name for o in g.outputs]},
                             f"{args.file}: model {g.name} ok: inputs {', '.join(op.id for op in g.inputs)}; "
                             f"heads {', '.join(o.name for o in g.outputs)}")
                continue
            a = _analyze(args, model=model)
        except NetspecError as e:
            report.errors(e.diagnostics)
            continue
        info = a.info
        ins = ", ".join(f"{i.name} {i.dtype}{_shape(i.shape)}" for i in info.inputs)
        heads = ", ".join(f"{h.name}{_shape(h.shape or ())}" + (f" ({h.task})" if h.task else "") for h in info.heads)
        summary = {"name": info.name, "params": a.num_params,
                   "inputs": [{"name": i.name, "dtype": i.dtype, "shape": list(i.shape)} for i in info.inputs],
                   "heads": [{"name": h.name, "task": h.task, "shape": list(h.shape or ())} for h in info.heads]}
        report.model(a.checked.warnings, summary,
                     f"{args.file}: model {info.name} ok: inputs {ins}; heads {heads}; {a.num_params:,} parameters")
        if args.weights:  # keys and shapes against the meta model: nothing is allocated for the model
            from .weights import load_weights
            try:
                loaded = load_weights(a.module, args.weights, convert=args.convert)
            except NetspecError as e:
                report.errors(e.diagnostics)
                continue
            summary["weights"] = {"file": args.weights, "tensors": len(loaded.loaded)}
            report.line(f"{args.weights}: all {len(loaded.loaded)} tensors fit model {info.name}")
    return report.finish()


def _output_error(path, e: Exception):
    """A file that cannot be written (a folder, no permission, a full disk) or a format that
    cannot be made: the user's to fix, a plain error."""
    from ..dsl.errors import NetspecError

    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    if isinstance(e, IsADirectoryError) or (isinstance(e, OSError) and os.path.isdir(path)):
        reason = "it is a directory; give a file name"
    return NetspecError(f"cannot write '{path}': {reason}")


def cmd_render(args) -> int:
    from ..dsl.render import render

    from .diagram import diagram_data

    a = _analyze(args)
    _print_diags(a.checked.warnings)
    try:
        out = render(a.graph, args.output, depth=args.depth, rankdir=args.rankdir, dpi=args.dpi,
                     **diagram_data(a, shapes=not args.no_shapes, params=args.params))
    except (OSError, ValueError, RuntimeError) as e:
        raise _output_error(args.output, e) from None
    print(f"wrote {out}")
    return EXIT_OK


def cmd_summary(args) -> int:
    from .summary import print_summary, summarize

    a = _analyze(args)
    _print_diags(a.checked.warnings)
    if args.freeze:
        from .finetune import freeze

        freeze(a.module, args.freeze, flag="--freeze")
    s = summarize(a, depth=args.depth)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_summary(s)
    return EXIT_OK


def cmd_compile(args) -> int:
    from ..dsl.params import parse_overrides

    from ..dsl.frontend import elaborate

    source, name = _source(args)
    overrides = parse_overrides(args.overrides)
    elaborate(source, args.model, overrides, extra_paths=args.path, file=name)  # spec errors before torch loads
    from .eject import eject

    code = eject(source, args.model, overrides, extra_paths=args.path, class_name=args.class_name,
                 optimize=not args.no_optimize)
    if args.output == "-":
        sys.stdout.write(code)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(code)
        except OSError as e:
            raise _output_error(args.output, e) from None
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_layers(args) -> int:
    from ..dsl.registry import COMMON_MODULE_KWARGS, REGISTRY
    from ..dsl.tasks import TASKS

    layers = sorted(REGISTRY.values(), key=lambda d: (d.kind, d.name.lower()))
    if args.json:
        print(json.dumps({
            "layers": [{"name": d.name, "kind": d.kind, "category": d.category, "inputs": d.inputs,
                        "args": [_arg_json(d, a) for a in d.schema], "doc": d.doc} for d in layers],
            "module_args": COMMON_MODULE_KWARGS,
            "tasks": [{"name": t.name, "doc": t.doc, "needs": list(t.needs), "loss": t.loss,
                       "metrics": list(t.metrics), "output": t.output,
                       "args": [{"name": a.name, "kind": a.kind, "default": a.default, "doc": a.doc}
                                for a in t.args]} for t in TASKS.values()],
        }, indent=2))
        return EXIT_OK
    for d in layers:
        sig = ", ".join(("*" if a.variadic else "") + a.name + ("" if a.required or a.variadic else f"={a.default!r}")
                        for a in d.schema)
        print(f"{d.kind:8} {d.category:10} {d.name}({sig})" + (f"  — {d.doc}" if d.doc else ""))
    for t in TASKS.values():
        sig = ", ".join(f"{a.name}={a.default!r}" if a.default is not None else f"{a.name}=<{a.kind}>"
                        for a in t.args)
        print(f"{'task':8} {'head':10} {t.name}({sig})  — {t.doc}")
    return EXIT_OK


def _arg_json(d, a) -> dict:
    out = {"name": a.name, "type": a.type, "required": a.required, "variadic": a.variadic}
    if not a.required and not a.variadic:
        out["default"] = a.default
    if a.name in d.extra.get("choices", {}):
        out["choices"] = list(d.extra["choices"][a.name])
    return out


def cmd_models(args) -> int:
    from ..dsl.library import reference, stdlib_models
    from .builder import analyze

    rows = []
    for m in stdlib_models():
        a = analyze(m.file, m.name)
        rows.append({"name": m.name, "file": m.file.stem, "default": m.default, "params": a.num_params,
                     "inputs": {i.name: list(i.shape) for i in a.info.inputs}, "reference": reference(m.file)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        spec = r["file"] + ("" if r["default"] else f" --model {r['name']}")
        print(f"{r['name']:<{width}}  {r['params']:>13,}  {spec:<24} {r['reference'] or ''}".rstrip())
    return EXIT_OK


def _check_args(p):
    spec_options(p, optional_file=True)
    p.add_argument("--all", action="store_true", help="check every model of the file")
    p.add_argument("--json", action="store_true", help="print one JSON object: ok, models, and diagnostics "
                   "(file, line, col, end, severity, code, message, notes)")
    p.add_argument("--no-lint", action="extend", nargs="+", default=[], metavar="CODE",
                   help="leave out these lints (codes or names, e.g. NS104 norm-with-dropout); one line is "
                        "silenced with a comment: # netspec: ignore[NS104]")
    p.add_argument("--explain", metavar="CODE", help="print why a lint warns and how to fix it, and exit")
    p.add_argument("--no-shapes", action="store_true", help="structural checks only (no torch, no shapes)")
    p.add_argument("--weights", metavar="FILE", help="also check that a checkpoint (.safetensors / .pt) "
                   "fits: every key present, no extra keys, every shape equal")
    p.add_argument("--convert", choices=["transformers"], help="convert --weights from this naming first")

    def check(args) -> int:
        if args.file is None and args.explain is None:
            p.error("the following arguments are required: file")
        return cmd_check(args)
    return check


def _render_args(p):
    spec_options(p)
    p.add_argument("-o", "--output", required=True, help="output file: .svg, .png, .pdf or .dot")
    render_options(p)
    return cmd_render


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _depth(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def render_options(p: argparse.ArgumentParser, *, dpi: bool = True) -> None:
    """The diagram options `render` and `serve` share."""
    from ..dsl.render.dot import RANKDIRS

    p.add_argument("--depth", type=_depth, default=None, help="collapse blocks nested N or more levels deep "
                   "into one node (0: the model's top level)")
    p.add_argument("--rankdir", choices=RANKDIRS, default="BT",
                   help="direction of the flow: BT bottom to top (default), TB, LR, RL")
    if dpi:
        p.add_argument("--dpi", type=_positive, default=None, help="resolution of .png output (Graphviz: 96)")
    p.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    p.add_argument("--params", action="store_true", help="show the parameter count of every layer and cluster")


def _summary_args(p):
    spec_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    p.add_argument("--depth", type=_depth, default=None, help="show blocks and named groups nested N or more "
                   "levels deep as one row each, as `render --depth N` draws them as one node (0: the top level)")
    p.add_argument("--freeze", action="append", default=[], metavar="PATTERN",
                   help="count these layers as frozen, as `netspec train --freeze` does (a glob over layer "
                        "paths: fc, layer*, 'transformer.h.[0-5]'; repeat it or separate with commas)")
    return cmd_summary


def _class_name(text: str) -> str:
    import keyword
    if not (text.isascii() and text.isidentifier()) or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"must be a Python class name (letters, digits, '_'), got {text!r}")
    return text


def _compile_args(p):
    spec_options(p, inputs=False)
    p.add_argument("-o", "--output", required=True, help="the .py file to write ('-' for stdout)")
    p.add_argument("--class-name", default=None, type=_class_name,
                   help="name of the generated nn.Module (default: the model's)")
    p.add_argument("--no-optimize", action="store_true", help="eject the spec as written, one line per op "
                   "(default: after the optimization passes, e.g. attention fused into "
                   "F.scaled_dot_product_attention; docs/OPTIMIZER.md)")
    return cmd_compile


def _layers_args(p):
    p.add_argument("--json", action="store_true", help="print a JSON object: layers (name, kind, category, "
                   "inputs, args, doc), module_args (what every layer with weights takes), tasks (head tasks "
                   "and their args)")
    return cmd_layers


def _models_args(p):
    p.add_argument("--json", action="store_true",
                   help="print a JSON list: name, file, default, params, inputs, reference")
    return cmd_models


# command -> function that adds its arguments and returns its handler
ARGUMENTS = {"check": _check_args, "render": _render_args, "summary": _summary_args, "compile": _compile_args,
             "layers": _layers_args, "models": _models_args}


def front_end_gc() -> None:
    """The collector settings of a front-end command: one short process building large acyclic
    structures (syntax trees, graphs, layers). Python's default thresholds rescan them so
    often that a 10,000-layer spec checks in 1.7x linear time; these keep it linear (mypy
    does the same)."""
    gc.freeze()  # what the imports made lives as long as the process
    gc.set_threshold(100_000, 50, 100)


def _with_front_end_gc(handler):
    @functools.wraps(handler)
    def run(args):
        front_end_gc()
        return handler(args)
    return run


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """Add command `name`'s arguments to its parser (called by netspec.cli)."""
    p.set_defaults(func=_with_front_end_gc(ARGUMENTS[name](p)))
