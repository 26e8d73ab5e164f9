"""A run folder's files that rebuild its model: written when a run starts, read by `eval`,
`sample` and `--resume`.

    config.yaml   the resolved RunConfig
    model.json    model name, parameters, --set overrides, input sizes, heads, data source,
                  where the spec copy is ("spec": main file and import folders), and the
                  parameters not trained ("frozen": --freeze, frozen=true, or by hand)
    spec/ stdlib/ the spec and every file it imports (speccopy.py)
    vocab.json    the character vocabulary of text trained with `vocab: char`
    data.json     what `predict` needs of the data: class names, normalisation, CSV columns

Every file is written whole or not at all and never through a link (safefile.py). A
folder that holds a run is trained into again only on purpose (`overwrite`): then the
old run's checkpoints, logs and metrics go first. What a run folder says is checked before
it is used -- it may come from someone else.

A run reads nothing from outside its folder: the model is rebuilt from the copy, so a run
outlives its sources and netspec upgrades. (Runs written before the copy existed kept
only `spec.nn`; they are rebuilt from it, else from the original source.)
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..dsl.errors import NetspecError
from . import safefile
from .config import RunConfig, load_config
from .speccopy import SpecCopy, copy_spec, spec_in

MODEL_JSON = "model.json"
VOCAB_JSON = "vocab.json"
DATA_JSON = "data.json"
CONFIG_YAML = "config.yaml"
METRICS_CSV = "metrics.csv"
# What training writes besides the spec copy: an earlier run's are removed before training
# anew into its folder (`overwrite`), so no stale checkpoint, log or curve outlives it.
RUN_FILES = (CONFIG_YAML, MODEL_JSON, VOCAB_JSON, METRICS_CSV, "curves.png", DATA_JSON, "last", "last.prev", "best",
             "best.prev", "tensorboard", "figures", "model.safetensors", "state.pt", "critic.safetensors")


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
        safefile.write_text(path, text)
    except OSError as e:
        raise RunError(f"cannot write '{path}': {e.strerror or e}")


JSON_LIMIT = 64 << 20  # model.json and vocab.json are kilobytes; a bigger one is not a run's


def _read_json(path: Path) -> Any:
    try:
        return json.loads(safefile.read_bytes(path, JSON_LIMIT).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
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


def run_files(out_dir: Path) -> list[str]:
    """The files of a run already in out_dir (empty: a new or empty folder)."""
    return [n for n in RUN_FILES if os.path.lexists(out_dir / n)]


def check_new_run(out_dir: Path, overwrite: bool) -> None:
    """Refuse to train anew into a folder holding a run, unless `overwrite`."""
    found = run_files(out_dir) if out_dir.is_dir() else []
    if found and not overwrite:
        raise RunError(f"'{out_dir}' holds a run already ({', '.join(found[:4])}); continue it with "
                       f"--resume {out_dir}, or replace it with --overwrite")


def clear_run(out_dir: Path) -> None:
    """Delete the files an earlier run left in out_dir; config.yaml and model.json are rewritten,
    its spec copy is replaced by copy_spec (which reads model.json to find it)."""
    for name in RUN_FILES:
        if name in (CONFIG_YAML, MODEL_JSON):
            continue
        try:
            safefile.remove(out_dir / name)
        except OSError as e:
            raise RunError(f"cannot remove '{out_dir / name}' of the earlier run: {e.strerror or e}")


def write_run_files(out_dir: Path, info, cfg: RunConfig, data, overrides: dict | None,
                    frozen: list[str] | None = None, extra: dict | None = None) -> None:
    """config.yaml, the spec copy, model.json and vocab.json of a new run (data: its `Data`;
    frozen: names of the parameters that are not trained, frozen again when the run is rebuilt;
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
        "frozen": list(frozen or []),
        **_jsonable(extra or {}),
    }
    _write(out_dir / MODEL_JSON, json.dumps(meta, indent=2) + "\n")
    if data.vocab is not None:
        _write(out_dir / VOCAB_JSON, json.dumps(data.vocab, ensure_ascii=False) + "\n")
    _write(out_dir / DATA_JSON, json.dumps(_jsonable(data.facts()), indent=2, ensure_ascii=False) + "\n")


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


def count_params(spec: str | Path, model: str | None, overrides: dict[str, Any], input_shapes: dict | None = None,
                 extra_paths=()) -> tuple[str, int]:
    """(model name, parameter count) of what build_model would build, counted on the meta
    device: nothing is allocated, so an oversized model is refused before it fills memory."""
    from .. import compiler

    kw: dict[str, Any] = {"input_shapes": input_shapes} if input_shapes else {}
    if extra_paths:
        kw["extra_paths"] = [str(p) for p in extra_paths]
    a = compiler.analyze(str(spec), model, overrides, **kw)
    return a.info.name, a.num_params


def read_vocab(run_dir: str | Path) -> list[str] | None:
    """The run's character vocabulary, or None (bytes): a list of distinct single characters, and
    the special tokens of sequence-to-sequence data (`<pad>`, `<bos>`, `<eos>`)."""
    p = Path(run_dir) / VOCAB_JSON
    if not os.path.lexists(p):
        return None
    vocab = _read_json(p)
    if (not isinstance(vocab, list) or not vocab or not all(isinstance(c, str) and (len(c) == 1 or _SPECIAL.fullmatch(c))
                                                            for c in vocab) or len(set(vocab)) != len(vocab)):
        raise RunError(f"'{p}' is not a character vocabulary (a JSON list of distinct single characters "
                       "and special tokens such as <pad>)")
    return vocab


_SPECIAL = re.compile(r"<[a-z]{1,16}>")  # a special token of seq2seq data


def _int_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)


# model.json key -> (its check, what it must be): a run folder may come from anyone
_META = {
    "model": (lambda v: isinstance(v, str), "a model name"),
    "overrides": (lambda v: v is None or isinstance(v, dict), "the --set values (an object)"),
    "params": (lambda v: isinstance(v, dict), "the model's parameters (an object)"),
    "data": (lambda v: v is None or isinstance(v, str), "a data SOURCE (a string)"),
    "inputs": (lambda v: isinstance(v, list) and all(isinstance(i, dict) and isinstance(i.get("name"), str)
                                                    and _int_list(i.get("shape", [1])) for i in v),
               "a list of inputs with a name and a shape of positive ints"),
}


def read_data_facts(run_dir: str | Path) -> dict | None:
    """data.json of a run folder (`Data.facts()`), or None for a run from before it was written."""
    p = Path(run_dir) / DATA_JSON
    if not p.is_file():
        return None
    facts = _read_json(p)
    if not isinstance(facts, dict):
        raise RunError(f"'{p}' is not a run's data description")
    return facts


def read_meta(run_dir: str | Path) -> dict:
    """model.json of a run folder, its fields checked."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"run folder '{run_dir}' not found")
    meta = _read_json(run / MODEL_JSON) if os.path.lexists(run / MODEL_JSON) else None
    if meta is None:
        raise RunError(f"'{run_dir}' is not a run folder (no {MODEL_JSON})")
    if not isinstance(meta, dict):
        raise RunError(f"'{run / MODEL_JSON}' is not a run's model description")
    for key, (ok, what) in _META.items():
        if key in meta and not ok(meta[key]):
            raise RunError(f"'{run / MODEL_JSON}': \"{key}\" must be {what}, got {json.dumps(meta[key])[:60]}")
    return meta


def load_run(run_dir: str | Path, *, device: str = "cpu", weights: bool = True, checkpoint: str = "last"):
    """Rebuild a run's model from its folder: (model, RunConfig, model.json dict).
    checkpoint: the weights to load, `last` or `best` (a GAN run has last/ only)."""
    from .checkpoint import BEST, load_weights_file

    run = Path(run_dir)
    meta = read_meta(run)
    if weights and checkpoint == BEST and meta.get("critic") is not None:
        raise RunError(f"'{run}' is a GAN run, which keeps no {BEST}/ checkpoint (its validation loss does not "
                       f"rank generators); use the last one (leave out --checkpoint)")
    cfg = load_config(run / CONFIG_YAML, in_run=True) if os.path.lexists(run / CONFIG_YAML) else load_config()
    spec = run_spec(run, meta)
    if spec is not None:
        model = build_model(*spec)
    else:
        model = _build_from_old_run(run, meta, _overrides(meta), _shapes(meta))
    _freeze_again(model, meta.get("frozen") or [], run)
    if device != "cpu":
        from .distributed import resolve_device

        model.to(resolve_device(device))
    if weights:
        load_weights_file(model, run, checkpoint=checkpoint)
    return model, cfg, meta


def _freeze_again(model, names, run: Path) -> None:
    """The run's frozen parameters stay frozen: a resumed run's optimizer holds the same ones."""
    params = dict(model.named_parameters(remove_duplicate=False))
    if not isinstance(names, list) or any(n not in params for n in names):
        raise RunError(f"{run / MODEL_JSON}: \"frozen\" names parameters the model does not have")
    for n in names:
        params[n].requires_grad_(False)
def _overrides(meta: dict) -> dict:
    overrides = meta.get("overrides")
    return meta.get("params") or {} if overrides is None else overrides


def _shapes(meta: dict) -> dict | None:
    return {i["name"]: tuple(i["shape"]) for i in meta.get("inputs", []) if "shape" in i} or None


def run_spec(run_dir: str | Path, meta: dict | None = None) -> tuple | None:
    """What rebuilds a run's model from its spec copy: (main file, model name, overrides, input
    shapes, import folders), build_model's arguments; None for a run from before copies."""
    run = Path(run_dir)
    meta = read_meta(run) if meta is None else meta
    copy = _spec_copy(meta)
    if copy is None:
        return None
    main, paths = spec_in(run, copy)
    if not main.is_file():
        raise RunError(f"'{run_dir}' lost its spec copy: '{main}' is missing")
    return main, meta.get("model"), _overrides(meta), _shapes(meta), paths


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
