"""A run folder's files that rebuild its model: written when a run starts, read by `eval`,
`sample` and `--resume`.

    config.yaml   the resolved RunConfig
    model.json    model name, parameters, --set overrides, input sizes, heads, data source,
                  and where the spec copy is ("spec": main file and import folders)
    spec/ stdlib/ the spec and every file it imports (speccopy.py)
    vocab.json    the character vocabulary of text trained with `vocab: char`

A run reads nothing from outside its folder: the model is rebuilt from the copy, so a run
outlives its sources and netspec upgrades. (Runs written before the copy existed kept
only `spec.nn`; they are rebuilt from it, else from the original source.)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..dsl.errors import NetspecError
from .config import RunConfig, load_config
from .speccopy import SpecCopy, copy_spec, spec_in

MODEL_JSON = "model.json"
VOCAB_JSON = "vocab.json"
CONFIG_YAML = "config.yaml"


class RunError(NetspecError):
    """A run folder that cannot be used or written (missing files, no lm head for sample, ...)."""


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise RunError(f"cannot write '{path}': {e.strerror or e}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RunError(f"cannot read '{path}': {getattr(e, 'strerror', None) or e}")


# --------------------------------------------------------------------------
# Writing


def make_run_folder(out_dir: Path) -> None:
    """Create the run folder (and its parents), or say why it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunError(f"cannot create run folder '{out_dir}': a file of that name exists")
    except OSError as e:
        raise RunError(f"cannot create run folder '{out_dir}': {e.strerror or e}")


def save_config(out_dir: Path, cfg: RunConfig) -> None:
    _write(out_dir / CONFIG_YAML, cfg.to_yaml())


def write_run_files(out_dir: Path, info, cfg: RunConfig, data, overrides: dict | None,
                    extra: dict | None = None) -> None:
    """config.yaml, the spec copy, model.json and vocab.json of a new run (data: its `Data`;
    extra: more keys for model.json, such as an adversarial run's critic)."""
    make_run_folder(out_dir)
    save_config(out_dir, cfg)
    copy = copy_spec(info, out_dir, replacing=_earlier_copy(out_dir))
    src = Path(info.source) if info.source and not info.source.startswith("<") else None
    meta = {
        "model": info.name,
        "params": _jsonable(info.params),
        "overrides": _jsonable(overrides) if overrides is not None else None,
        "source": str(src.resolve()) if src is not None and src.exists() else info.source,
        "spec": copy.to_json() if copy is not None else None,
        "data": data.name,
        "inputs": [{"name": i.name, "dtype": i.dtype, "dims": _jsonable(i.dims), "shape": list(i.shape)}
                   for i in info.inputs],
        "heads": [{"name": h.name, "task": h.task, "weight": h.weight} for h in info.heads],
        **_jsonable(extra or {}),
    }
    _write(out_dir / MODEL_JSON, json.dumps(meta, indent=2) + "\n")
    if data.vocab is not None:
        _write(out_dir / VOCAB_JSON, json.dumps(data.vocab, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------
# Reading


def build_model(spec: str | Path, model: str | None, overrides: dict[str, Any], input_shapes: dict | None = None,
                extra_paths=()):
    """netspec.build(spec, model=..., **overrides); `spec` is a path or a stdlib name.
    input_shapes ({name: shape}) sets the sizes the data is made for (symbolic dims like H, W);
    extra_paths: folders to search for imports."""
    from .. import compiler

    kw: dict[str, Any] = {"input_shapes": input_shapes} if input_shapes else {}
    if extra_paths:
        kw["extra_paths"] = [str(p) for p in extra_paths]
    return compiler.build(str(spec), model=model, **kw, **overrides)


def read_vocab(run_dir: str | Path) -> list[str] | None:
    """The run's character vocabulary, or None (bytes)."""
    p = Path(run_dir) / VOCAB_JSON
    return _read_json(p) if p.is_file() else None


def read_meta(run_dir: str | Path) -> dict:
    """model.json of a run folder."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"run folder '{run_dir}' not found")
    meta = _read_json(run / MODEL_JSON) if (run / MODEL_JSON).is_file() else None
    if meta is None:
        raise RunError(f"'{run_dir}' is not a run folder (no {MODEL_JSON})")
    if not isinstance(meta, dict):
        raise RunError(f"'{run / MODEL_JSON}' is not a run's model description")
    return meta


def load_run(run_dir: str | Path, *, device: str = "cpu", weights: bool = True):
    """Rebuild a run's model from its folder: (model, RunConfig, model.json dict)."""
    from .checkpoint import load_weights_file

    run = Path(run_dir)
    meta = read_meta(run)
    cfg = load_config(run / CONFIG_YAML if (run / CONFIG_YAML).is_file() else None)
    overrides = meta.get("overrides")
    if overrides is None:
        overrides = meta.get("params") or {}
    shapes = {i["name"]: tuple(i["shape"]) for i in meta.get("inputs", []) if "shape" in i} or None
    copy = _spec_copy(meta)
    if copy is not None:
        main, paths = spec_in(run, copy)
        if not main.is_file():
            raise RunError(f"'{run_dir}' lost its spec copy: '{main}' is missing")
        model = build_model(main, meta.get("model"), overrides, shapes, paths)
    else:
        model = _build_from_old_run(run, meta, overrides, shapes)
    if device != "cpu":
        from .distributed import resolve_device

        model.to(resolve_device(device))
    if weights:
        load_weights_file(model, run)
    return model, cfg, meta


def _earlier_copy(out_dir: Path) -> SpecCopy | None:
    """The spec copy of a run that was in `out_dir` before (trained anew into the same folder)."""
    try:
        return _spec_copy(read_meta(out_dir)) if (out_dir / MODEL_JSON).is_file() else None
    except RunError:  # unreadable: nothing known to replace
        return None


def _spec_copy(meta: dict) -> SpecCopy | None:
    """model.json's spec copy, or None for a run from before copies (or of a hand-made model)."""
    if meta.get("spec") is None:
        return None
    try:
        return SpecCopy.from_json(meta["spec"])
    except ValueError as e:
        raise RunError(f"{MODEL_JSON}: \"spec\" is not a spec copy of the run: {e}") from None


def _build_from_old_run(run: Path, meta: dict, overrides: dict, shapes):
    """A run from before the spec copy: its spec.nn, else the original source."""
    candidates = [p for p in (run / "spec.nn", Path(meta.get("source") or "")) if str(p) != "." and p.is_file()]
    if not candidates:
        raise RunError(f"'{run}' has no spec copy and its source '{meta.get('source')}' is gone")
    first_error = None
    for spec in candidates:
        try:
            return build_model(spec, meta.get("model"), overrides, shapes)
        except NetspecError as e:  # spec.nn alone fails on relative imports: try the original
            first_error = first_error or e
    raise first_error
