"""Loading pretrained weights into built models: `load_weights`, converters, `WeightsError`.

    report = load_weights(model, "gpt2.safetensors", convert="transformers")

The source is a path (.safetensors, or .pt/.pth/.bin read with
torch.load(weights_only=True)) or a state dict. A converter renames and
reshapes another library's keys into the model's (`CONVERTERS`, extend with
`register_converter`). Loading is strict by default: any missing,
unexpected or mis-shaped key raises `WeightsError` before a single tensor
is copied; with strict=False what matches is loaded and the `LoadReport`
says what was not (`report.table()`: one row per key that did not load).
`reinit=PATTERNS` (compiler/finetune.py) leaves the layers they name at their
fresh initialisation and ignores the checkpoint's tensors for them: a new
classifier head of another size loads strictly.

Tied weights (one Parameter under several names, like GPT's wte and
lm_head) load from a checkpoint that has any one of the names, or several
of them when they agree.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..dsl.errors import NetspecError

__all__ = [
    "CONVERTERS",
    "LoadReport",
    "WeightsError",
    "convert_transformers_gpt2",
    "load_weights",
    "read_state_dict",
    "register_converter",
]

StateDict = Mapping[str, torch.Tensor]

# Keys of each list shown in an error message before "... and N more".
MAX_LISTED = 20


class WeightsError(NetspecError):
    """The checkpoint does not fit the model, or cannot be read. `.report` holds the details when it is a mismatch."""

    def __init__(self, message: str, report: LoadReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # model keys that received a tensor
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint has no tensor for
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model has no place for
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # (key, model shape, checkpoint shape)
    conflicting: list[list[str]] = field(default_factory=list)  # checkpoint keys of one tied tensor whose values differ
    reinit: list[str] = field(default_factory=list)  # model keys left at their initialisation on purpose (reinit=)
    ignored: list[str] = field(default_factory=list)  # checkpoint keys of those layers, not loaded on purpose

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.conflicting)

    def summary(self) -> str:
        """One line: what loaded, what was left at its initialisation, what did not fit."""
        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.reinit:
            parts.append(f"{len(self.reinit)} re-initialised ({_listed(self.reinit)})")
        misfits = len(self.missing) + len(self.mismatched) + sum(len(c) for c in self.conflicting)
        if misfits:
            parts.append(f"{misfits} left at their initialisation")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} checkpoint tensors unused")
        return ", ".join(parts)

    def table(self) -> str:
        """The keys that did not load, one row each: key, model shape, checkpoint shape, why."""
        rows = [(k, _shape(m), _shape(c), "mis-shaped") for k, m, c in self.mismatched]
        rows += [(k, "", "", "missing from the checkpoint") for k in self.missing]
        rows += [(k, "", "", "not in the model") for k in self.unexpected]
        rows += [(" = ".join(ks), "", "", "tied keys with different values") for ks in self.conflicting]
        if not rows:
            return ""
        head = ("key", "model", "checkpoint", "")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3] for r in [head] + rows]
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        if self.ok:
            reinit = f"; {len(self.reinit)} re-initialised" if self.reinit else ""
            return f"all {len(self.loaded)} keys loaded{reinit}"
        counts = [
            f"{len(self.missing)} missing",
            f"{len(self.unexpected)} unexpected",
            f"{len(self.mismatched)} mis-shaped",
        ]
        if self.conflicting:
            counts.append(f"{len(self.conflicting)} conflicting tied")
        lines = [f"weights do not fit the model: {', '.join(counts)} ({len(self.loaded)} keys fit)"]

        def section(title: str, items: list[str]) -> None:
            if not items:
                return
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items[:MAX_LISTED])
            if len(items) > MAX_LISTED:
                lines.append(f"  ... and {len(items) - MAX_LISTED} more")

        section("missing keys (in the model, not in the checkpoint)", self.missing)
        section("unexpected keys (in the checkpoint, not in the model)", self.unexpected)
        section(
            "mis-shaped keys",
            [f"{k}: model expects {_shape(m)}, checkpoint has {_shape(c)}" for k, m, c in self.mismatched],
        )
        section(
            "tied keys with different values in the checkpoint",
            [" = ".join(keys) for keys in self.conflicting],
        )
        return "\n".join(lines)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _listed(keys: list[str], most: int = 4) -> str:
    return ", ".join(keys[:most]) + (f", ... and {len(keys) - most} more" if len(keys) > most else "")


# ---------------------------------------------------------------- converters

Converter = Callable[[StateDict], dict[str, torch.Tensor]]
CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, fn: Converter) -> Converter:
    """Make `fn` (state dict -> state dict) available as load_weights(..., convert=name)."""
    CONVERTERS[name] = fn
    return fn


# transformers' GPT-2 uses its Conv1D layer for these: weight stored [in, out],
# the transpose of nn.Linear's [out, in].
_GPT2_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Causal-mask buffers that older transformers versions saved with the weights.
_GPT2_BUFFERS = ("attn.bias", "attn.masked_bias")


def convert_transformers_gpt2(state: StateDict) -> dict[str, torch.Tensor]:
    """HuggingFace transformers GPT2LMHeadModel / GPT2Model state dict -> nanoGPT's names.

    Keys may come with or without the "transformer." prefix (GPT2Model has
    none). Keys it does not know pass through unchanged, so they show up as
    unexpected rather than vanishing.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "lm_head.weight":
            out[key] = value
            continue
        name = key.removeprefix("transformer.")
        parts = name.split(".")
        if parts[0] == "h" and len(parts) >= 4:
            suffix = ".".join(parts[2:])
            if suffix in _GPT2_BUFFERS:
                continue
            if suffix in _GPT2_CONV1D:
                value = value.t().contiguous()
        if parts[0] in ("wte", "wpe", "h", "ln_f", "drop"):
            name = "transformer." + name
        out[name] = value
    return out


register_converter("transformers", convert_transformers_gpt2)


# ---------------------------------------------------------------- reading

_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")
# Prefixes that wrappers add to every key: torch.compile, DataParallel/DDP.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def read_state_dict(source: str | os.PathLike | StateDict) -> dict[str, torch.Tensor]:
    """A flat {key: tensor} from a file or a mapping.

    Unwraps training checkpoints that keep the weights under "state_dict",
    "model_state_dict" or "model", and strips a "_orig_mod." or "module."
    prefix when every key has it.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise WeightsError(f"weights file not found: {path}")
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        elif suffix in (".pt", ".pth", ".bin"):
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
            except Exception as e:  # pickles with arbitrary objects are refused by design
                raise WeightsError(f"cannot read {path} with torch.load(weights_only=True): {e}") from e
        else:
            raise WeightsError(f"unknown weights format {suffix!r} for {path}: expected .safetensors, .pt, .pth or .bin")
    elif isinstance(source, Mapping):
        obj = source
    else:
        raise WeightsError(f"expected a path or a state dict, got {type(source).__name__}")

    if isinstance(obj, Mapping) and not _all_tensors(obj):
        for k in _CONTAINER_KEYS:
            inner = obj.get(k)
            if isinstance(inner, Mapping) and _all_tensors(inner):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not _all_tensors(obj):
        raise WeightsError(
            "the checkpoint is not a state dict (a mapping of names to tensors)"
            + (f"; its top-level keys: {sorted(map(str, obj))[:MAX_LISTED]}" if isinstance(obj, Mapping) else "")
        )
    state = dict(obj)
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _all_tensors(obj: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


# ---------------------------------------------------------------- loading

# Counter that old checkpoints lack; it only matters for BatchNorm with
# momentum=None, and torch's own loader fills it in too.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def load_weights(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike | StateDict,
    convert: str | Converter | None = None,
    strict: bool = True,
    reinit=(),
) -> LoadReport:
    """Copy a checkpoint's tensors into `model`'s parameters and buffers, in place.

    convert: a name in CONVERTERS (e.g. "transformers") or a function
    state dict -> state dict. strict=True raises WeightsError on any
    mismatch and then leaves the model untouched; strict=False loads every
    key that fits. reinit: patterns (compiler/finetune.py) of layers that keep
    their initialisation: their keys are neither loaded nor missing, and the
    checkpoint's keys under them are ignored. Returns the LoadReport either way.
    """
    from .finetune import matches, select_keys, split_patterns

    state = read_state_dict(path_or_state_dict)
    if convert is not None:
        if isinstance(convert, str):
            if convert not in CONVERTERS:
                raise WeightsError(f"unknown converter {convert!r}; known: {sorted(CONVERTERS)}")
            convert = CONVERTERS[convert]
        state = dict(convert(state))

    targets = model.state_dict(keep_vars=True)
    patterns = split_patterns(reinit)
    info = getattr(model, "netspec", None)
    fresh = select_keys(targets, patterns, model=info.name if info else type(model).__name__,
                        flag="reinit pattern")
    # Keys of one tensor (tied weights) in model order; the first names the group.
    groups: dict[int, list[str]] = {}
    for key, tensor in targets.items():
        groups.setdefault(id(tensor), []).append(key)

    report = LoadReport()
    plan: list[tuple[torch.Tensor, torch.Tensor]] = []
    for keys in groups.values():
        if any(k in fresh for k in keys):  # one tied tensor: re-initialised under any of its names
            report.reinit.extend(keys)
            continue
        present = [k for k in keys if k in state]
        if not present:
            if not all(k.endswith(_OPTIONAL_SUFFIXES) for k in keys):
                report.missing.extend(keys)
            continue
        target = targets[keys[0]]
        bad = [(k, tuple(target.shape), tuple(state[k].shape)) for k in present if state[k].shape != target.shape]
        if bad:
            report.mismatched.extend(bad)
            continue
        first = state[present[0]]
        if any(not torch.equal(first, state[k]) for k in present[1:]):
            report.conflicting.append(present)
            continue
        plan.append((target, first))
        report.loaded.extend(keys)
    report.ignored = [k for k in state if any(matches(p, k) for p in patterns)]
    report.unexpected = [k for k in state if k not in targets and k not in report.ignored]

    if strict and not report.ok:
        raise WeightsError(str(report), report)
    with torch.no_grad():
        for target, value in plan:
            target.copy_(value)
    return report
