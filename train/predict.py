"""`netspec predict`: a trained run on new inputs, its outputs named.

    results = predict("runs/ResNet18", ["cat.png", "photos/"])
    results[0]  # {"input": "cat.png", "heads": {"logits": {"class": "cat", "index": 1,
                #   "probabilities": {"cat": 0.93, "dog": 0.07}}}}

The run folder keeps what this needs (data.json, written by `runfolder`): the class names
of the data, how raw inputs were normalised, a CSV's feature columns; a run written before
data.json reads its data source once to learn them. Inputs by what the run was trained on:

- images: image files, folders of them (searched recursively, in sorted order), or a
  `.npy` of images; turned into the model's channels and size and normalised as in training.
- vectors (csv:, npy:, flat inputs): a `.csv` with a header (the run's feature columns are
  picked by name) or a `.npy` of [N, D] / [D]; standardised with the training statistics.
- text (lm runs): each INPUT is a prompt, continued as `netspec sample` does.

Each head's output is named by its task (`READERS`): classify -> class and probabilities,
regress -> values, segment -> share of pixels per class, reconstruct -> mean squared error,
a head without a task -> its shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import DataError, Want, load_data, want_from_info
from .data.arrays import as_images, load_array, numbers, read_csv, vectors_as_input
from .data.core import fit_images
from .data.images import IMAGE_SUFFIXES, read_images
from .extras import require
from .heads import outputs_by_head
from .runfolder import RunError, load_run, read_data_facts, read_vocab

np = require("numpy")


@dataclass
class Sample:
    name: str  # how the input is named in the output: a path, or `FILE[i]` for row i of a .npy / .csv
    x: torch.Tensor  # the model's input for it, one sample (no batch dim)


@dataclass
class Run:
    """What prediction needs of a run folder."""

    model: torch.nn.Module
    want: Want
    facts: dict  # data.json
    classes: list[str]
    vocab: list[str] | None
    seq_len: int | None
    vocab_limit: int | None = None  # a padded vocabulary's real size (RunConfig.vocab_limit)


def open_run(run_dir: str | Path, device: str = "cpu", checkpoint: str = "last") -> Run:
    model, cfg, meta = load_run(run_dir, device=device, checkpoint=checkpoint)
    model.eval()
    info = model.netspec
    facts = read_data_facts(run_dir)
    if facts is None:  # a run from before data.json: its data says how inputs were prepared
        source = meta.get("data") or cfg.data
        facts = load_data(source, info, cfg, model=model, vocab=read_vocab(run_dir)).facts()
    want = want_from_info(info, cfg.seq_len)
    return Run(model, want, facts, list(facts.get("classes") or []), read_vocab(run_dir), cfg.seq_len,
               cfg.vocab_limit)


# --------------------------------------------------------------------------
# Inputs


def _image_files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"'{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return found
    return [path]


def _images(run: Run, files: list[Path]) -> list[Sample]:
    norm = run.facts.get("normalize") or {"mean": 0.0, "std": 1.0}
    out = []
    for i in range(0, len(files), 64):  # decoded a batch at a time
        chunk = files[i : i + 64]
        x = fit_images(read_images(chunk, run.want, "predict"), run.want, norm["mean"], norm["std"])
        out += [Sample(str(f), t) for f, t in zip(chunk, x)]
    return out


def _npy_images(run: Run, path: Path, a: np.ndarray) -> list[Sample]:
    images = as_images(a if a.ndim >= 3 else a[None])
    if images is None or images.ndim != 4:
        raise DataError(f"{path}: holds {list(a.shape)}; expected images [N, (C,) H, W]")
    norm = run.facts.get("normalize") or {"mean": 0.0, "std": 1.0}
    scale = norm.get("scale", 1 / 255 if images.dtype == np.uint8 else 1.0)
    x = torch.from_numpy(np.ascontiguousarray(images[:, :3])).float() * scale
    x = fit_images(x, run.want, norm["mean"], norm["std"])
    return [Sample(f"{path}[{i}]", t) for i, t in enumerate(x)]


def _vectors(run: Run, names: list[str], x: np.ndarray) -> list[Sample]:
    norm = run.facts.get("normalize")
    t = torch.from_numpy(x.astype(np.float32))
    if norm is not None:
        t = (t - torch.tensor(norm["mean"])) / torch.tensor(norm["std"])
    return [Sample(n, v) for n, v in zip(names, vectors_as_input(t, run.want))]


def _width(run: Run) -> int:
    w = run.want
    return w.flat_dim if w.kind == "flat" else w.channels * w.height * w.width


def _csv(run: Run, path: Path) -> list[Sample]:
    header, rows = read_csv(path, min_rows=1)
    features = run.facts.get("features")
    if features:
        missing = [f for f in features if f not in header]
        if missing:
            raise DataError(f"{path}: no column '{missing[0]}' (the run was trained on columns {', '.join(features)})")
        cols = [header.index(f) for f in features]
    else:
        skip = set(run.facts.get("targets") or [])
        cols = [i for i, h in enumerate(header) if h not in skip]
    if len(cols) != _width(run):
        raise DataError(f"{path}: {len(cols)} feature columns, but {run.model.netspec.name} takes {_width(run)}")
    x = numbers(path, header, rows, cols)
    return _vectors(run, [f"{path}[{n}]" for n in range(len(rows))], x)


def _npy(run: Run, path: Path) -> list[Sample]:
    a = load_array(path)
    if run.facts.get("inputs") == "images" and a.ndim >= 2 and (a.ndim > 2 or run.want.kind == "image"):
        return _npy_images(run, path, a)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        a = a.reshape(len(a), -1)
    if a.shape[1] != _width(run):
        raise DataError(f"{path}: vectors of {a.shape[1]} values, but {run.model.netspec.name} takes {_width(run)}")
    return _vectors(run, [f"{path}[{i}]" for i in range(len(a))], a)


def read_inputs(run: Run, inputs: list[str]) -> list[Sample]:
    """INPUT paths -> samples in the model's input layout, in the order given."""
    if run.want.kind == "tokens":
        raise RunError("text runs predict from prompts (predict_text), not files")
    samples: list[Sample] = []
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise DataError(f"input '{text}' not found")
        suffix = path.suffix.lower()
        if path.is_file() and suffix == ".npy":
            samples += _npy(run, path)
        elif path.is_file() and suffix == ".csv":
            samples += _csv(run, path)
        elif run.facts.get("inputs") == "vectors":
            raise DataError(f"'{text}': {run.model.netspec.name} was trained on vectors; give a .csv or .npy")
        else:
            samples += _images(run, _image_files(path))
    return samples


# --------------------------------------------------------------------------
# Outputs, by task


def _class_name(run: Run, i: int) -> str:
    return run.classes[i] if i < len(run.classes) else str(i)


def _classify(run: Run, out: torch.Tensor, x: torch.Tensor) -> dict:
    p = torch.softmax(out.float(), -1)
    i = int(p.argmax())
    return {"class": _class_name(run, i), "index": i,
            "probabilities": {_class_name(run, k): float(v) for k, v in enumerate(p)}}


def _regress(run: Run, out: torch.Tensor, x: torch.Tensor) -> dict:
    values = [float(v) for v in out.float().reshape(-1)]
    names = run.facts.get("targets")
    result: dict = {"values": values}
    if names and len(names) == len(values):
        result["names"] = list(names)
    return result


def _segment(run: Run, out: torch.Tensor, x: torch.Tensor) -> dict:
    mask = out.argmax(0).reshape(-1)
    counts = torch.bincount(mask, minlength=out.shape[0]).float() / mask.numel()
    return {"pixels": {_class_name(run, k): float(v) for k, v in enumerate(counts) if v > 0}}


def _reconstruct(run: Run, out: torch.Tensor, x: torch.Tensor) -> dict:
    return {"mse": float(((out.float() - x.float()) ** 2).mean())}


def _raw(run: Run, out: torch.Tensor, x: torch.Tensor) -> dict:
    return {"shape": list(out.shape)}


# head task -> what its output says about one sample (untrained heads: `None`)
READERS: dict[str | None, Callable[[Run, torch.Tensor, torch.Tensor], dict]] = {
    "classify": _classify, "regress": _regress, "segment": _segment, "reconstruct": _reconstruct, None: _raw,
}


@torch.no_grad()
def run_samples(run: Run, samples: list[Sample], batch_size: int = 64) -> list[dict]:
    """[{"input": name, "heads": {head: what READERS say}}] for every sample."""
    info = run.model.netspec
    device = next(iter(run.model.parameters()), torch.zeros(())).device
    results = []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        x = torch.stack([s.x for s in chunk]).to(device)
        outs = outputs_by_head(run.model(x), info)
        for j, s in enumerate(chunk):
            heads = {h.name: READERS.get(h.task, _raw)(run, outs[h.name][j].cpu(), s.x) for h in info.heads}
            results.append({"input": s.name, "heads": heads})
    return results


def predict(run_dir: str | Path, inputs: list[str], *, device: str = "cpu", batch_size: int = 64) -> list[dict]:
    """Run a trained run on files (images, folders, .npy, .csv); see the module docstring."""
    run = open_run(run_dir, device)
    return run_samples(run, read_inputs(run, list(inputs)), batch_size)


# --------------------------------------------------------------------------
# Text


def format_result(result: dict, top: int) -> str:
    """One line per input: `cat.png  cat 0.93  dog 0.07` (heads named when there are several)."""
    parts = []
    heads = result["heads"]
    for name, r in heads.items():
        if "probabilities" in r:
            best = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:top]
            text = "  ".join(f"{c} {p:.3f}" for c, p in best)
        elif "values" in r:
            vals = [f"{v:.4g}" for v in r["values"]]
            text = "  ".join(f"{n}={v}" for n, v in zip(r["names"], vals)) if "names" in r else " ".join(vals)
        elif "pixels" in r:
            text = "  ".join(f"{c} {p:.1%}" for c, p in sorted(r["pixels"].items(), key=lambda kv: -kv[1]))
        elif "mse" in r:
            text = f"reconstruction mse {r['mse']:.4g}"
        else:
            text = f"output {r['shape']}"
        parts.append(text if len(heads) == 1 else f"{name}: {text}")
    return f"{result['input']}  " + ("; ".join(parts))
