"""The run configuration of `netspec train`: one dataclass, YAML in and out.

`RunConfig` holds every knob of a training run except the model and the data.
It is read from `--config run.yaml`, then command-line flags override single
fields, and the resolved result is written next to the run as `config.yaml`
so that `--resume`, `eval` and `sample` see exactly what training saw.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..dsl.errors import NetspecError
from . import safefile
from .extras import require
from .loggers import LOGGERS

yaml = require("yaml")


class ConfigError(NetspecError):
    """A bad run configuration: unknown key, wrong type or value. Message is user-facing."""


@dataclass
class RunConfig:
    # --- data -------------------------------------------------------------
    data: str | None = None  # SOURCE (digits, shapes, pycode, text:PATH, ...); None: picked from the heads
    vocab: str = "bytes"  # text data: "bytes" (256 ids, works on any file) or "char" (saved with the run)
    val_fraction: float | None = None  # held-out share when the data has no test split; None: 0.2 images, 0.1 text
    seq_len: int | None = None  # lm: tokens per sequence; None: the model's T (a fixed dim or block_size)
    augment: bool = True  # digits / MNIST / CIFAR / image folders: random shifts up to 1/16 of the side, train split
    # only; LeNet-5 on digits: ~98.9% val accuracy with it vs ~97.8% without (it stops the overfitting)
    num_workers: int = 0  # DataLoader worker processes; 0 keeps loading in-process (in-memory sets need no more)
    target: str | None = None  # csv: the label / target column(s), comma-separated; None: a column named
    # label, target, class or y, else the last one
    features: str | None = None  # csv: the feature columns, comma-separated, in input order; None: all the others

    # --- optimisation -----------------------------------------------------
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-3  # peak learning rate; small nets under AdamW with warm-up and clipping take 2e-3 well
    # (LeNet-5 / digits: 98.3-98.9% at 2e-3 vs 97.8% at 1e-3 in 1000 steps); lower it for big models
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW; 0.95 as in nanoGPT, steadier than 0.999 on short runs
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.1  # AdamW decoupled decay on >=2-D weights only; biases and norm weights are exempt
    warmup_steps: int = 50  # linear warm-up from 0; short because default runs are short
    schedule: str = "cosine"  # cosine | linear | constant, applied after warm-up
    min_lr: float | None = None  # floor of the decay; None: lr / 10 (Chinchilla / nanoGPT rule)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    batch_size: int = 64  # samples per micro-batch (per process under torchrun)
    grad_accum: int = 1  # micro-batches per optimizer step; effective batch = batch_size * grad_accum * world
    steps: int | None = None  # optimizer steps; None: from epochs, else 1000
    epochs: float | None = None  # passes over the training split, converted to steps; steps wins if both set

    # --- evaluation, logging, checkpoints ---------------------------------
    eval_every: int = 200  # steps between validation passes (and one at the end); 0: only at the end
    eval_batches: int = 50  # cap on validation batches per pass; 0: the whole validation split
    log_every: int = 10  # steps between metrics.csv rows / plain progress lines
    save_every: int = 500  # steps between checkpoints (and one at the end); 0: only at the end
    best_metric: str | None = None  # metrics.csv validation column that picks best/ (and early_stop);
    # None: the first trained head's first metric (val_accuracy, val_perplexity, ...; its loss if it has none)
    early_stop: int = 0  # stop after this many evals in a row without a new best; 0: never
    log: tuple[str, ...] = ()  # logs beside metrics.csv (loggers.LOGGERS): tensorboard

    # --- execution --------------------------------------------------------
    seed: int = 1337  # seeds init, split, shuffling and dropout; same seed, same run
    device: str = "auto"  # auto | cpu | cuda | mps; auto prefers cuda, then mps, then cpu
    compile: bool = False  # torch.compile the model; pays off only on long GPU runs
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 uses a GradScaler on CUDA)
    tf32: bool = True  # CUDA: TF32 float32 matmuls and cuDNN convolutions (recipe.py); false: full fp32
    channels_last: str = "auto"  # auto | true | false: NHWC layout for models with Conv2d; auto: on CUDA only
    pad_vocab: int = 0  # lm: build the model with vocab_size rounded up to a multiple of this (64: faster
    # matmuls); 0: as the spec says. The padded ids never reach the loss, metrics or sampling (vocab_limit)
    vocab_limit: int | None = None  # lm heads: only logits below this id count (set by pad_vocab to the
    # unpadded vocab_size); None: all of them
    strategy: str = "ddp"  # under torchrun: ddp (replicas) | fsdp (FSDP2 fully_shard: parameters, gradients
    # and optimizer state sharded across ranks, for models too big for one device)
    max_params: int = 2_000_000_000  # refuse bigger models before allocating them (a slip like
    # --set n_embd=100000); 0: no cap. The machine's memory is checked either way.

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------
    def validate(self) -> None:
        def bad(msg):
            raise ConfigError(msg)

        if isinstance(self.channels_last, bool):
            self.channels_last = "true" if self.channels_last else "false"
        choices = {
            "optimizer": ("adamw", "sgd"),
            "schedule": ("cosine", "linear", "constant"),
            "device": ("auto", "cpu", "cuda", "mps"),
            "precision": ("fp32", "bf16", "fp16"),
            "vocab": ("bytes", "char"),
            "channels_last": ("auto", "true", "false"),
            "strategy": ("ddp", "fsdp"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                bad(f"{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        if isinstance(self.log, (str, list)):
            self.log = (self.log,) if isinstance(self.log, str) else tuple(self.log)
        if len(self.betas) != 2:
            bad(f"betas must be two numbers, got {self.betas!r}")
        # NaN passes every comparison, so finiteness comes first
        for key in ("lr", "min_lr", "weight_decay", "momentum", "grad_clip", "epochs", "val_fraction"):
            v = getattr(self, key)
            if v is not None and not math.isfinite(v):
                bad(f"{key} must be a finite number, got {v}")
        if not all(math.isfinite(b) and 0 <= b < 1 for b in self.betas):
            bad(f"betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.lr <= 0:
            bad(f"lr must be positive, got {self.lr}")
        for key in ("min_lr", "weight_decay", "grad_clip"):
            if (getattr(self, key) or 0) < 0:
                bad(f"{key} must not be negative, got {getattr(self, key)}")
        if not 0 <= self.momentum < 1:
            bad(f"momentum must be in [0, 1), got {self.momentum}")
        for key in ("batch_size", "grad_accum"):
            if getattr(self, key) < 1:
                bad(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("steps", "seq_len", "vocab_limit"):
            v = getattr(self, key)
            if v is not None and v < 1:
                bad(f"{key} must be at least 1, got {v}")
        if self.epochs is not None and self.epochs <= 0:
            bad(f"epochs must be positive, got {self.epochs}")
        for key in ("eval_every", "eval_batches", "log_every", "save_every", "warmup_steps", "num_workers",
                    "early_stop", "max_params", "pad_vocab"):
            if getattr(self, key) < 0:
                bad(f"{key} must not be negative, got {getattr(self, key)}")
        for key in _INTS:  # torch and numpy take 64-bit integers; counts past 2**53 are slips
            v = getattr(self, key)
            if v is not None and v > (2**63 - 1 if key == "seed" else 2**53):
                bad(f"{key} is too large: {v}")
        if self.seed < 0:
            bad(f"seed must not be negative, got {self.seed}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            bad(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for name in self.log:
            if name not in LOGGERS:
                bad(f"log must name logs among {', '.join(LOGGERS)}, got {name!r}")
        if self.strategy == "fsdp" and self.log:  # they run the model on rank 0 alone: a sharded one hangs
            bad(f"strategy fsdp cannot go with log: {', '.join(self.log)} (it runs the model on rank 0 alone, "
                "which a sharded model cannot do); drop the log or use strategy ddp")

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    # ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["log"] = list(self.log)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_text(self.to_yaml())
        except OSError as e:
            raise ConfigError(f"cannot write '{path}': {e.strerror or e}")

    def replace(self, **changes) -> "RunConfig":
        return from_dict({**self.to_dict(), **changes})


# Names other trainers use for the same knob, so the did-you-mean can point at ours.
_ALIASES = {
    "learning_rate": "lr", "max_steps": "steps", "max_iters": "steps", "iters": "steps",
    "num_epochs": "epochs", "batch": "batch_size", "bs": "batch_size", "clip": "grad_clip",
    "max_grad_norm": "grad_clip", "gradient_accumulation_steps": "grad_accum", "warmup": "warmup_steps",
    "warmup_iters": "warmup_steps", "lr_schedule": "schedule", "scheduler": "schedule", "optim": "optimizer",
    "dtype": "precision", "block_size": "seq_len", "workers": "num_workers", "eval_interval": "eval_every",
    "eval_iters": "eval_batches", "log_interval": "log_every", "decay": "weight_decay", "wd": "weight_decay",
}


def config_keys() -> list[str]:
    return [f.name for f in fields(RunConfig)]


_FLOATS = {"lr", "min_lr", "weight_decay", "momentum", "grad_clip", "epochs", "val_fraction"}
_INTS = {"batch_size", "grad_accum", "steps", "eval_every", "eval_batches", "log_every", "save_every", "seed",
         "warmup_steps", "num_workers", "seq_len", "early_stop", "max_params", "pad_vocab", "vocab_limit"}
_BOOLS = ("compile", "augment", "tf32")
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}  # max_params: 500M, 2B


def _coerce(key: str, value: Any, default: Any) -> Any:
    """YAML and the CLI give strings/ints loosely; bring them to the field's type."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) and key not in _BOOLS + ("channels_last",):
            raise ValueError
        if key in _FLOATS:
            return float(value)
        if key == "max_params" and isinstance(value, str) and value[-1:].upper() in _SCALE:
            return int(float(value[:-1]) * _SCALE[value[-1].upper()])
        if key in _INTS:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if key == "channels_last":  # YAML reads true / false as booleans
            return {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else str(value)
        if key in _BOOLS:
            if isinstance(value, str):
                low = value.lower()
                if low in ("true", "yes", "1", "on"):
                    return True
                if low in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            raise ValueError
        if key == "data" and not isinstance(value, str):
            raise ConfigError(f"data: expected a SOURCE such as digits or text:FILE, got {value!r}")
        if key in ("target", "features"):
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return ",".join(value)
            if not isinstance(value, str):
                raise ConfigError(f"{key}: expected column names, e.g. {key}: [a, b], got {value!r}")
        if key == "best_metric" and not isinstance(value, str):
            raise ConfigError(f"best_metric: expected a validation column such as val_accuracy, got {value!r}")
        if key == "log":
            names = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(n, str) for n in names):
                raise ValueError
            return tuple(names)
        if key == "betas":
            if isinstance(value, str):
                value = [v for v in value.replace("(", "").replace(")", "").replace(",", " ").split()]
            return tuple(float(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}: cannot read {value!r} as a {type(default).__name__ if default is not None else 'number'}")
    return value


def from_dict(d: dict[str, Any], where: str = "config") -> RunConfig:
    known = config_keys()
    defaults = RunConfig.__dataclass_fields__
    clean = {}
    for key, value in (d or {}).items():
        k = str(key).replace("-", "_")
        if k not in known:
            close = difflib.get_close_matches(k, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            if not close and k in _ALIASES:
                hint = f" (did you mean '{_ALIASES[k]}'?)"
            raise ConfigError(f"{where}: unknown key '{key}'{hint}")
        default = defaults[k].default
        clean[k] = _coerce(k, value, default)
    return RunConfig(**clean)


CONFIG_LIMIT = 1 << 20  # a run config is a page of settings


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
                in_run: bool = False) -> RunConfig:
    """Read a YAML run config (optional) and apply overrides (None values are ignored).
    in_run: the config.yaml of a run folder, read only as a regular file, never through a link."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not in_run and not p.is_file():
            raise ConfigError(f"config file '{path}' not found")
        try:
            raw = safefile.read_bytes(p, CONFIG_LIMIT) if in_run else p.read_bytes()
            loaded = yaml.safe_load(raw.decode("utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not a text file ({e.reason} at byte {e.start})")
        except OSError as e:
            raise ConfigError(f"cannot read config file '{path}': {e.strerror or e}")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        data.update(loaded)
        cfg = from_dict(data, where=str(path))
        data = cfg.to_dict()
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    return from_dict(data)
