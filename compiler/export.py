"""ONNX export of a built model: torch's exporter, the spec's names, dynamic axes, a check.

    report = export_onnx(model, "gpt2.onnx")      # model: compiler.build(...) (has .netspec)
    report.dynamic                                # {'idx': {0: 'B', 1: 'T'}}
    report.max_error                              # onnxruntime vs PyTorch, when it is installed

The batch and sequence axes a spec names (`input idx: long[B, T]`, `float[B, T, C]`) are
exported as dynamic axes of those names, shared between inputs that share a name; other
named axes (an image's H, W) stay at the traced size unless `dynamic` names them, since
torch's exporter writes some size-dependent ops (adaptive pooling) for the traced size
only. Where the model pins a dimension asked to be dynamic, the exporter is asked again
to keep what it can dynamic. Nodes are renamed after the layer of the spec they
come from (`transformer.h.0.attn.c_attn/MatMul`), initializers keep the state_dict keys
(`transformer.wte.weight`), graph inputs and outputs are the spec's inputs and heads.
The exporter's ONNX optimizer is not run: it renames folded weights (`val_40`), merges
equal initializers (every zero bias of a fresh model into one) and fuses BatchNorm into
the convolution, so the file would no longer mirror the spec; onnxruntime does those
optimizations itself when it loads the file.
After writing, onnxruntime (if installed) runs the file on the export inputs and on
another batch size and compares with the PyTorch model.

Needs the `export` extras: pip install 'netspec-nn[export]' (onnx, onnxscript, onnxruntime).
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..dsl.errors import NetspecError

OPSET = 18  # what the dynamo exporter writes by default (onnxruntime >= 1.14 runs it)
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "int64": torch.int64, "int32": torch.int32, "bool": torch.bool, "uint8": torch.uint8}


class ExportError(NetspecError):
    """The exporter or the check failed for a reason the user can act on."""


@dataclass
class ExportReport:
    path: Path
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]  # input -> {axis: name} exported as dynamic
    static: dict[str, dict[int, str]] = field(default_factory=dict)  # axes asked for that the model pins
    named_nodes: int = 0  # nodes renamed after a spec layer
    nodes: int = 0
    max_error: float | None = None  # largest |onnxruntime - torch| over the checks; None: not checked
    checked: list[tuple[int, ...]] = field(default_factory=list)  # input shapes the check ran


def example_inputs(info, sizes: dict[str, int] | None = None, *, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One tensor per model input at its default shape, named dims replaced by `sizes`.
    Integer inputs hold 0s and 1s (valid indices for any embedding)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for inp in info.inputs:
        shape = [sizes.get(d, s) if sizes and isinstance(d, str) else s for d, s in zip(inp.dims, inp.shape)]
        dtype = _DTYPES.get(inp.dtype, torch.float32)
        if dtype.is_floating_point:
            out.append(torch.randn(*shape, generator=g).to(dtype))
        elif dtype == torch.bool:
            out.append(torch.randint(0, 2, shape, generator=g).bool())
        else:
            out.append(torch.randint(0, 2, shape, generator=g, dtype=dtype))
    return tuple(out)


def default_dynamic(info) -> set[str]:
    """The named batch and sequence axes: axis 0 of every input, axis 1 of token indices
    [B, T] and of sequences [B, T, C]."""
    out = set()
    for inp in info.inputs:
        for ax, d in enumerate(inp.dims):
            integer = not _DTYPES.get(inp.dtype, torch.float32).is_floating_point
            if isinstance(d, str) and (ax == 0 or (ax == 1 and (len(inp.dims) == 3 or integer))):
                out.add(d)
    return out


def _trace_sizes(info) -> dict[str, int]:
    """Sizes to trace at: the defaults, but at least 2 (torch.export pins dims of size 0 and 1)."""
    sizes = {}
    for inp in info.inputs:
        for d, s in zip(inp.dims, inp.shape):
            if isinstance(d, str):
                sizes[d] = max(2, s)
    return sizes


def _dynamic_shapes(info, names: set[str], auto: bool):
    from torch.export import Dim

    dims: dict[str, object] = {}
    spec = []
    for inp in info.inputs:
        axes = {}
        for ax, d in enumerate(inp.dims):
            if isinstance(d, str) and d in names:
                axes[ax] = Dim.AUTO if auto else dims.setdefault(d, Dim(d))
        spec.append(axes or None)
    return tuple(spec)


def _run_exporter(model, args, path: Path, info, names: set[str], auto: bool):
    names_in = [i.name for i in info.inputs]
    names_out = [h.name for h in info.heads]
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        return torch.onnx.export(model, args, str(path), dynamo=True, input_names=names_in,
                                 output_names=names_out, dynamic_shapes=_dynamic_shapes(info, names, auto),
                                 opset_version=OPSET, external_data=False, optimize=False, verbose=False)


def _rename_nodes(proto) -> int:
    """node_linear_3 -> transformer.h.0.attn.c_attn/MatMul, from the exporter's name scopes."""
    used: dict[str, int] = {}
    renamed = 0
    for node in proto.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = re.findall(r"'([^']*)'", meta.get("pkg.torch.onnx.name_scopes", ""))
        layer = scopes[-2] if len(scopes) >= 3 else ""
        if not layer or layer.startswith("_"):
            continue
        base = f"{layer}/{node.op_type}"
        n = used.get(base, 0)
        used[base] = n + 1
        node.name = base if n == 0 else f"{base}_{n}"
        renamed += 1
    return renamed


def _canonical_weights(proto, model) -> None:
    """A tied weight under the name the state_dict gives it first (transformer.wte.weight,
    not the exporter's pick, lm_head.weight)."""
    first: dict[int, str] = {}
    rename = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            rename[name] = first[id(p)]
        else:
            first[id(p)] = name
    taken = {i.name for i in proto.graph.initializer}
    rename = {a: b for a, b in rename.items() if a in taken and b not in taken}
    if not rename:
        return
    for init in proto.graph.initializer:
        init.name = rename.get(init.name, init.name)
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]


def _rename_dims(proto, info) -> None:
    """The exporter's own names of dynamic axes (s0, s12) -> the spec's (B, T)."""
    mapping = {}
    for vi, inp in zip(proto.graph.input, info.inputs):
        for d, named in zip(vi.type.tensor_type.shape.dim, inp.dims):
            if isinstance(named, str) and d.dim_param and d.dim_param != named:
                mapping[d.dim_param] = named
    if not mapping:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(mapping, key=len, reverse=True))) + r")\b")
    for vi in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = pattern.sub(lambda m: mapping[m.group(1)], d.dim_param)


def _axes(proto, info, names) -> tuple[dict, dict]:
    """input -> {axis: name} of the asked-for axes the file has dynamic, and of those it fixed."""
    dynamic, static = {}, {}
    for vi, inp in zip(proto.graph.input, info.inputs):
        for ax, (d, named) in enumerate(zip(vi.type.tensor_type.shape.dim, inp.dims)):
            if isinstance(named, str) and named in names:
                (dynamic if d.dim_param else static).setdefault(inp.name, {})[ax] = named
    return dynamic, static


def _outputs(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    return list(result)


def check_onnx(path: Path, model, info, variants) -> tuple[float, list[tuple[int, ...]]]:
    """Run the file in onnxruntime on each input tuple of `variants` (the model must accept
    them; those it refuses are skipped) and return the largest difference to PyTorch."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    worst, ran = 0.0, []
    for args in variants:
        try:
            with torch.no_grad():
                want = _outputs(model(*args))
        except Exception:  # noqa: BLE001 - sizes this model cannot take (valid convolutions)
            continue
        try:
            got = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types
            raise ExportError(f"{path}: onnxruntime cannot run inputs {[list(a.shape) for a in args]}, which "
                              f"PyTorch runs: {_first_line(e)}") from None
        for w, g in zip(want, got):
            if tuple(w.shape) != g.shape:
                raise ExportError(f"{path}: onnxruntime gave shape {list(g.shape)} for inputs "
                                          f"{[list(a.shape) for a in args]}, PyTorch {list(w.shape)}")
            worst = max(worst, float(np.max(np.abs(w.float().numpy() - g.astype(np.float32)), initial=0.0)))
        ran.append(tuple(tuple(a.shape) for a in args))
    return worst, ran


def export_onnx(model, path, *, dynamic=None, check: bool = True, atol: float = 1e-4) -> ExportReport:
    """Write `model` (a GraphModule from compiler.build; exported in eval mode) to `path` as ONNX.

    dynamic: names of the input axes to export as dynamic (default: `default_dynamic`).
    check: run the file in onnxruntime (when installed) at the traced sizes and at other
        sizes of the dynamic axes, and compare with PyTorch.
    Raises ExportError when the exporter fails or onnxruntime disagrees by more than atol.
    """
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch's exporter imports it; say so here rather than mid-export
    except ModuleNotFoundError as e:
        raise ExportError("netspec export needs onnx and onnxscript: "
                                  "pip install 'netspec-nn[export]'") from e
    info = model.netspec
    named = {d for i in info.inputs for d in i.dims if isinstance(d, str)}
    names = default_dynamic(info) if dynamic is None else set(dynamic)
    if names - named:
        raise ExportError(f"model {info.name} has no input axis named {', '.join(sorted(names - named))} "
                          f"(its named axes: {', '.join(sorted(named)) or 'none'})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        sizes = _trace_sizes(info)
        args = example_inputs(info, sizes)
        try:
            _run_exporter(model, args, path, info, names, auto=False)
        except Exception as first:  # a named dim the model pins: let the exporter keep what it can
            try:
                _run_exporter(model, args, path, info, names, auto=True)
            except Exception as e:
                raise ExportError(f"torch.onnx.export failed for model {info.name}: "
                                          f"{type(e).__name__}: {_first_line(e)}") from first
        proto = onnx.load(str(path))
        renamed = _rename_nodes(proto)
        _canonical_weights(proto, model)
        _rename_dims(proto, info)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
        dynamic, static = _axes(proto, info, names)
        report = ExportReport(path, [i.name for i in proto.graph.input], [o.name for o in proto.graph.output],
                              dynamic, static, renamed, len(proto.graph.node))
        if check:
            report.max_error, report.checked = _check(path, model, info, sizes, dynamic)
            if report.max_error > atol:
                raise ExportError(f"{path}: onnxruntime's outputs differ from PyTorch's by "
                                          f"{report.max_error:.3g} (> {atol:g})")
        return report
    finally:
        model.train(was_training)


def _check(path, model, info, sizes, dynamic):
    """The traced sizes, then the batch one larger, then every dynamic axis one larger and
    halved (batch 1 included); sizes the PyTorch model refuses are left out."""
    try:
        import onnxruntime  # noqa: F401
    except ModuleNotFoundError:
        return None, []
    names = {n for axes in dynamic.values() for n in axes.values()}
    batch = {axes[0] for axes in dynamic.values() if 0 in axes}
    changes = ({}, {n: sizes[n] + 1 for n in batch}, {n: sizes[n] + 1 for n in names},
               {n: max(1, sizes[n] // 2) for n in names})
    variants, seen = [], set()
    for k, change in enumerate(changes):
        args = example_inputs(info, {**sizes, **change}, seed=k + 1)
        key = tuple(tuple(a.shape) for a in args)
        if key not in seen:
            seen.add(key)
            variants.append(args)
    return check_onnx(path, model, info, variants)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""
