"""Checkpoints of a run folder: `last/` to resume from, `best/` by the validation metric.

A checkpoint is one folder, committed as one unit:

    last/  model.safetensors  weights (tied weights stored once, re-tied on load)
           state.pt           optimizer, schedule, scaler, RNG states, step, data position,
                              the best metric so far
           checkpoint.json    written last: step, the checkpoint's id, each file's size
    best/  model.safetensors and checkpoint.json (with the metric and its value)

A GAN's last/ holds its critic too (critic.safetensors; both optimizers are in state.pt), and
it has no best/ (adversarial.py). Which files a checkpoint may hold is the FILES table.

It is written into a temporary folder and swapped in by renames: `last` becomes
`last.prev`, the temporary folder becomes `last`, `last.prev` is deleted. After a crash
at any point there is a complete `last` or a complete `last.prev`, which is opened
instead with a warning. Both files carry the checkpoint's id (in the safetensors
metadata and in state.pt), so weights and state of different saves are never mixed: such
a folder is refused with the reason. Weights go through `safetensors.torch.save_model` /
`load_model`; state.pt holds plain tensors and numbers and loads with
`torch.load(weights_only=True)`. Runs of netspec 0.2 kept `model.safetensors` and
`state.pt` in the run folder itself; they still load, their steps compared.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from ..dsl.errors import NetspecError
from . import faults, safefile

WEIGHTS = "model.safetensors"
CRITIC = "critic.safetensors"  # a GAN's critic, beside its generator's weights
STATE = "state.pt"
FILES = (WEIGHTS, CRITIC, STATE)  # what a checkpoint's manifest may list; nothing else is read
MANIFEST = "checkpoint.json"
LAST, BEST = "last", "best"  # the checkpoints of a run folder
FORMAT = 1

Writer = Callable[[str, str], None]  # (path to fill, checkpoint id) -> None


class CheckpointError(NetspecError):
    """A checkpoint that is missing, incomplete, mismatched or unreadable. The message is user-facing."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


# --------------------------------------------------------------------------
# Weights files


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """model's weights as a safetensors file, written whole or not at all."""
    safefile.write_with(Path(path), lambda p: save_model(unwrap(model), p, metadata=dict(metadata or {})))


def weights_path(path: str | Path, checkpoint: str = LAST) -> Path:
    """The weights file `path` names: the file itself, a checkpoint folder's, or a run
    folder's (its `checkpoint`: last or best, a run of netspec 0.2: its model.safetensors)."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / MANIFEST).is_file():
        return open_checkpoint(path.parent, path.name, state=False, folder=path).weights
    return open_checkpoint(path, checkpoint, state=False).weights


def load_weights_file(model: torch.nn.Module, path: str | Path, strict: bool = True, checkpoint: str = LAST) -> None:
    """Load a model.safetensors written by `save_weights` (or a run / checkpoint folder's, see weights_path)."""
    path = weights_path(path, checkpoint)
    if not path.is_file():
        raise CheckpointError(f"no weights at '{path}'")
    try:
        device = next(iter(unwrap(model).parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    try:
        load_model(unwrap(model), str(path), strict=strict, device=str(device))
    except RuntimeError as e:
        raise CheckpointError(f"weights in '{path}' do not fit the model: {e}")
    except Exception as e:  # noqa: BLE001 - safetensors' own error for a truncated or damaged file
        raise CheckpointError(f"cannot read '{path}': not a complete safetensors file ({e})")


def _weights_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - any unreadable header is the same user problem
        raise CheckpointError(f"cannot read '{path}': not a complete safetensors file ({e})")


# --------------------------------------------------------------------------
# Committing


def commit(run_dir: str | Path, name: str, files: dict[str, Writer], step: int,
           extra: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `name` (last, best) of run_dir as one unit: `files` maps each file
    name to a writer filling it, `extra` goes into checkpoint.json. Returns its folder.
    A failure to write (a full disk, a folder made read-only) is a CheckpointError and leaves
    the previous checkpoint as it was."""
    try:
        return _commit(Path(run_dir), name, files, step, extra)
    except OSError as e:
        raise CheckpointError(f"cannot write the {name} checkpoint into '{run_dir}': {e.strerror or e}; "
                              "the previous one is intact") from None


def _commit(root: Path, name: str, files: dict[str, Writer], step: int, extra: dict[str, Any] | None) -> Path:
    ck_id = uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        sizes = {}
        for fname, write in files.items():
            write(str(tmp / fname), ck_id)
            safefile.fsync_file(tmp / fname)
            sizes[fname] = (tmp / fname).stat().st_size
            faults.point(f"{name}:{fname}", step)
        manifest = {"format": FORMAT, "step": step, "checkpoint": ck_id, "files": sizes, **(extra or {})}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        safefile.fsync_file(tmp / MANIFEST)
        safefile.fsync_dir(tmp)
        faults.point(f"{name}:manifest", step)
    except BaseException:
        safefile.remove(tmp)
        raise
    final, prev = root / name, root / f"{name}.prev"
    if os.path.lexists(final) and not final.is_dir() or final.is_symlink():
        safefile.remove(final)  # not a checkpoint of ours: a link or a stray file
    if os.path.lexists(final):
        safefile.remove(prev)  # a crash after the last commit's rename: `final` is complete
        os.replace(final, prev)
        safefile.fsync_dir(root)
        faults.point(f"{name}:retire", step)
    os.replace(tmp, final)
    safefile.fsync_dir(root)
    faults.point(f"{name}:commit", step)
    safefile.remove(prev)
    faults.point(f"{name}:cleanup", step)
    return final


def weights_writer(model: torch.nn.Module, metadata: dict[str, str]) -> Writer:
    """A `commit` writer of the model's weights, the checkpoint's id in their metadata."""
    return lambda path, ck_id: save_model(unwrap(model), path, metadata={**metadata, "checkpoint": ck_id})


def state_writer(state: dict[str, Any]) -> Writer:
    """A `commit` writer of a training state (plain tensors and numbers), the checkpoint's id in it."""
    return lambda path, ck_id: torch.save({**state, "checkpoint": ck_id}, path)


def discard(run_dir: str | Path, name: str) -> None:
    """Delete checkpoint `name` (found damaged; its `.prev` stays and takes its place on the next save)."""
    safefile.remove(Path(run_dir) / name)


def remove_temporaries(run_dir: str | Path) -> None:
    """Delete the temporary folders of saves a crash interrupted."""
    for p in Path(run_dir).glob(".*.tmp"):
        safefile.remove(p)


# --------------------------------------------------------------------------
# Opening


@dataclass
class Checkpoint:
    folder: Path
    step: int
    id: str | None  # None: a run of netspec 0.2 (no manifest)
    manifest: dict
    state: dict | None = None  # state.pt, when opened with state=True

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS

    def file(self, name: str) -> Path:
        """One of the checkpoint's FILES (verified when it was opened with it in `files`)."""
        return self.folder / name


def _reject(folder: Path, why: str):
    raise CheckpointError(f"'{folder}' is not a complete checkpoint: {why}")


def _read_manifest(folder: Path) -> dict:
    try:
        m = json.loads(safefile.read_bytes(folder / MANIFEST, 1 << 20).decode("utf-8"))
    except FileNotFoundError:
        _reject(folder, f"it has no {MANIFEST} (a save was interrupted)")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        _reject(folder, f"{MANIFEST} is unreadable ({getattr(e, 'strerror', None) or e})")
    ok = (isinstance(m, dict) and m.get("format") == FORMAT and isinstance(m.get("step"), int)
          and isinstance(m.get("checkpoint"), str) and isinstance(m.get("files"), dict))
    if not ok:
        _reject(folder, f"{MANIFEST} is not a netspec checkpoint manifest")
    return m


def _verify(folder: Path, state: bool, files: tuple[str, ...] = ()) -> Checkpoint:
    """The checkpoint in `folder`, every file checked against its manifest (`files`: more that
    it must hold, such as a GAN's critic); raises CheckpointError."""
    if folder.is_symlink():
        _reject(folder, "it is a symbolic link (a run's checkpoints are folders inside it)")
    m = _read_manifest(folder)
    needed = (WEIGHTS, *files, STATE) if state else (WEIGHTS, *files)
    for fname in needed:
        if fname not in m["files"]:
            _reject(folder, f"it holds no {fname}")
    for fname, size in m["files"].items():
        p = folder / str(fname)
        if fname not in FILES or p.is_symlink() or not p.is_file():
            _reject(folder, f"{fname} is missing")
        if p.stat().st_size != size:
            _reject(folder, f"{fname} has {p.stat().st_size} bytes where {size} were written (truncated?)")
    ck = Checkpoint(folder, m["step"], m["checkpoint"], m)
    for fname in (WEIGHTS, *files):
        if not fname.endswith(".safetensors"):
            continue
        meta = _weights_metadata(ck.file(fname))
        if meta.get("checkpoint") != ck.id:
            _reject(folder, f"{fname} is from another save (step {meta.get('step', '?')}) than {MANIFEST} "
                            f"(step {ck.step})")
    if state:
        ck.state = _load_state(folder / STATE)
        if ck.state.get("checkpoint") != ck.id:
            _reject(folder, f"{STATE} is from another save (step {ck.state.get('step', '?')}) than "
                            f"{WEIGHTS} (step {ck.step})")
    return ck


def _load_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise CheckpointError(f"cannot read '{path}': {e}")
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"'{path}' is not a netspec training state")
    return state


def _legacy(run: Path, state: bool) -> Checkpoint:
    """A run of netspec 0.2: model.safetensors and state.pt beside model.json."""
    weights = run / WEIGHTS
    if weights.is_symlink() or (run / STATE).is_symlink():
        raise CheckpointError(f"'{run}': {WEIGHTS} or {STATE} is a symbolic link; refusing to read through it")
    meta = _weights_metadata(weights)
    ck = Checkpoint(run, int(meta["step"]) if str(meta.get("step", "")).isdigit() else -1, None, {})
    if state:
        ck.state = _load_state(run / STATE)
        if ck.step >= 0 and ck.state["step"] != ck.step:
            raise CheckpointError(f"'{run}': {WEIGHTS} is from step {ck.step} but {STATE} from step "
                                  f"{ck.state['step']}: they are not one checkpoint, so the run cannot resume")
        ck.step = ck.state["step"]
    return ck


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def open_checkpoint(run_dir: str | Path, name: str = LAST, *, state: bool = True, folder: Path | None = None,
                    files: tuple[str, ...] = (), warn: Callable[[str], None] = _stderr) -> Checkpoint:
    """Checkpoint `name` of a run folder, verified: `name/`, else (a save interrupted while
    swapping) `name.prev/` with a warning, else a netspec 0.2 run's files. state: load state.pt
    too (to resume); files: more FILES it must hold (a GAN's critic; a netspec 0.2 run has
    none). Raises CheckpointError saying what is wrong with each candidate."""
    run = Path(run_dir)
    problems = []
    for cand in ([folder] if folder is not None else [run / name, run / f"{name}.prev"]):
        if not os.path.lexists(cand):
            continue
        try:
            ck = _verify(cand, state, files)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if problems:
            warn(f"warning: {problems[-1]}; using '{cand}' (step {ck.step}) instead")
        return ck
    if folder is None and name == LAST and (run / WEIGHTS).is_file() and (not state or (run / STATE).is_file()):
        if files:  # the checkpoint of a GAN run keeps its critic inside last/ only
            raise CheckpointError(f"'{run}' keeps its weights in the folder itself (the layout before {LAST}/), "
                                  f"which has no place for {', '.join(files)}; train this run anew")
        return _legacy(run, state)
    if problems:
        raise CheckpointError(problems[0] + (f"; and {problems[1]}" if len(problems) > 1 else ""))
    raise CheckpointError(f"'{run}' has no {name} checkpoint ({run / name} is missing)")


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether run_dir holds any checkpoint (complete or not): the mark of a run that trained."""
    run = Path(run_dir)
    return any(os.path.lexists(run / n) for n in (LAST, f"{LAST}.prev", BEST, STATE, WEIGHTS))
