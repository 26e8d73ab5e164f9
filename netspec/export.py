"""`netspec export`: a spec, or a trained run folder, to an ONNX file.

    netspec export gpt2 --set n_layer=2 -o gpt2.onnx        # fresh weights (or --weights FILE)
    netspec export runs/lenet-3 -o lenet.onnx               # the run's trained weights

The conversion itself is `compiler.export.export_onnx`; this command only finds the
model: built from the spec (compiler) or rebuilt from a run folder (train's `load_run`,
which reads model.json, the spec copy and the last checkpoint's weights).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _model(args):
    from .dsl.errors import NetspecError

    if Path(args.file).is_dir():
        from .train import load_run

        if args.model or args.overrides or args.inputs or args.weights:
            raise NetspecError(f"{args.file} is a run folder: its model, parameters, input sizes and weights are "
                               "the run's (drop --model/--set/--input/--weights)")
        model, _, _ = load_run(args.file)
        return model, f"trained weights of {args.file}"
    from .compiler.builder import build
    from .dsl.params import parse_input_shapes, parse_overrides

    model = build(args.file, args.model, input_shapes=parse_input_shapes(args.inputs) or None,
                  extra_paths=args.path, **parse_overrides(args.overrides))
    if args.weights:
        from .compiler.weights import load_weights
        load_weights(model, args.weights, convert=args.convert)
        return model, f"weights of {args.weights}"
    return model, "fresh weights (the spec's initialisation; --weights FILE or a run folder for trained ones)"


def cmd_export(args) -> int:
    from .compiler.export import export_onnx

    from .dsl.errors import NetspecError

    model, weights = _model(args)
    try:
        r = export_onnx(model, args.output, dynamic=args.dynamic, check=not args.no_check, atol=args.atol)
    except OSError as e:  # a folder to create where there cannot be one, a read-only disk
        raise NetspecError(f"cannot write {args.output}: {e.strerror or e}") from None
    axes = ", ".join(f"{name}[{', '.join(str(d) for d in model.netspec.inputs[i].dims)}]"
                     for i, name in enumerate(r.inputs))
    dyn = sorted({n for a in r.dynamic.values() for n in a.values()})
    print(f"wrote {r.path}: inputs {axes}; outputs {', '.join(r.outputs)}; {r.nodes} nodes, "
          f"{r.named_nodes} named after spec layers; {weights}")
    print(f"dynamic axes: {', '.join(dyn) if dyn else 'none'}"
          + (f"; fixed by the model: {', '.join(sorted({n for a in r.static.values() for n in a.values()}))}"
             if r.static else ""))
    if r.max_error is not None:
        shapes = "; ".join(", ".join(f"{list(s)}" for s in c) for c in r.checked)
        print(f"onnxruntime matches PyTorch: max |difference| {r.max_error:.2g} on inputs {shapes}")
    elif not args.no_check:
        print("not checked: onnxruntime is not installed (pip install 'netspec-nn[export]')")
    return 0


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """`netspec export`'s arguments (called by netspec.cli)."""
    p.add_argument("file", help="a .nn spec, a standard-library name, or a run folder of `netspec train`")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--model", help="which model of the file (default: its `default model` or only model)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override model parameters, e.g. --set n_layer=4")
    p.add_argument("--input", dest="inputs", action="extend", nargs="+", default=[], metavar="NAME=SHAPE",
                   help="input size to trace at, e.g. --input x=1x3x224x224 (named dims stay dynamic)")
    p.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search for imports")
    p.add_argument("--weights", metavar="FILE", help="load these weights (.safetensors / .pt) into the spec's model")
    p.add_argument("--convert", choices=["transformers"], help="convert --weights from this naming first")
    p.add_argument("--dynamic", nargs="+", metavar="AXIS", help="named input axes to export as dynamic "
                   "(default: batch and sequence axes, e.g. B T; `--dynamic B H W` for any image size)")
    p.add_argument("--no-check", action="store_true", help="do not compare onnxruntime's outputs with PyTorch's")
    p.add_argument("--atol", type=float, default=1e-4, help="largest difference the check accepts (1e-4)")
    p.set_defaults(func=cmd_export)
