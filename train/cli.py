"""`netspec train`, `netspec eval` and `netspec sample`: the command-line face of the trainer.

`configure(name, parser)` adds one command's arguments (netspec.cli owns the command
table); each handler takes the parsed args and returns an exit code. User errors are
`NetspecError`s (RunError here), which netspec.cli prints as `error: ...`. Only the
handlers import the trainer, so `--help` works without the training extras.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .loggers import LOGGERS

CHECKPOINTS = ("last", "best")  # the checkpoints of a run folder (checkpoint.LAST, checkpoint.BEST)

EPILOG_TRAIN = """\
data SOURCE: digits | shapes[:K] | pycode | text:FILE | images:DIR | mnist:DIR | cifar10:DIR
             (a bare path is detected; without --data a built-in source that fits the heads)
run folder:  config.yaml model.json spec/ (the spec and what it imports) metrics.csv curves.png
             last/ (weights + training state, to resume) best/ (best weights) [tensorboard/]
"""


def _train_args(p):
    p.epilog = EPILOG_TRAIN
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", nargs="?", metavar="FILE", help="spec file (not needed with --resume)")
    p.add_argument("--model", help="model of the file (default: its default / only model)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override model parameters (after FILE: --set d=64 layers=2)")
    p.add_argument("--input", action="extend", nargs="+", default=[], metavar="NAME=SHAPE",
                   help="input size the data is made for, e.g. --input x=1x3x64x64 (default: the spec's)")
    p.add_argument("--config", metavar="YAML", help="run config file (flags below override it)")
    p.add_argument("--data", metavar="SOURCE", help="training data (see below)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default 1000)")
    g.add_argument("--epochs", type=float, metavar="N", help="passes over the training split")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--lr", type=float, metavar="X")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--vocab", choices=("bytes", "char"), help="text data: byte or character vocabulary")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<model>[-N])")
    p.add_argument("--overwrite", action="store_true", help="train anew into an --out that holds a run")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--weights", metavar="FILE", help="start from these weights (safetensors / torch file)")
    p.add_argument("--convert", choices=("transformers",), help="convert --weights from this naming first")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--eval-every", type=int, metavar="N")
    p.add_argument("--save-every", type=int, metavar="N")
    p.add_argument("--early-stop", type=int, metavar="N", help="stop after N evals without a new best")
    p.add_argument("--log", action="append", choices=tuple(LOGGERS), help="also log to: "
                   + "; ".join(f"{k}: {v.doc}" for k, v in LOGGERS.items()))
    p.add_argument("--max-params", metavar="N", help="refuse bigger models (default 2B; 500M, 0: no cap)")
    return cmd_train


def _eval_args(p):
    p.description = "Loss and accuracy / IoU / perplexity of a run on the validation split."
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", metavar="SOURCE", help="data to evaluate on (default: the run's)")
    p.add_argument("--batches", type=int, metavar="N", help="cap on validation batches (default: all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="last", help="weights to evaluate (default last)")
    return cmd_eval


def _sample_args(p):
    p.description = "Generate text from a run whose model has an lm head."
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", required=True, metavar="TEXT")
    p.add_argument("--tokens", type=int, default=200, metavar="N", help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, metavar="T", help="softmax temperature (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest only")
    p.add_argument("--seed", type=int, default=None, metavar="N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="last", help="weights to sample (default last)")
    return cmd_sample


# command -> function that adds its arguments and returns its handler
ARGUMENTS = {"train": _train_args, "eval": _eval_args, "sample": _sample_args}


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """Add command `name`'s arguments to its parser (called by netspec.cli)."""
    p.set_defaults(func=_file_errors_as_user_errors(ARGUMENTS[name](p)))


def _file_errors_as_user_errors(handler):
    """A file the command cannot read or write (permissions, a full disk, a folder where a
    file should be) is the user's to fix: a RunError naming it, never a traceback."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from .runfolder import RunError

        try:
            return handler(args)
        except BrokenPipeError:  # output piped into `head`: netspec.cli ends quietly
            raise
        except OSError as e:
            where = f"'{e.filename}': " if e.filename else ""
            raise RunError(f"{where}{e.strerror or e}") from None
    return run


# --------------------------------------------------------------------------
# Handlers


def parse_set(items: list[str]) -> dict[str, Any]:
    if not items:
        return {}
    from ..dsl.params import parse_overrides

    return parse_overrides(items)


def _unique_dir(base: Path) -> Path:
    if not base.exists():
        return base
    n = 2
    while (base.parent / f"{base.name}-{n}").exists():
        n += 1
    return base.parent / f"{base.name}-{n}"


def cmd_train(args: argparse.Namespace) -> int:
    """netspec train FILE ... | netspec train --resume RUN_DIR"""
    from .trainer import train

    flags, clear = _config_flags(args)
    if args.resume:
        if args.overwrite:
            from .runfolder import RunError

            raise RunError("--overwrite starts a run anew; it cannot go with --resume")
        model, cfg, overrides, out = _resumed_run(args, flags, clear)
    else:
        model, cfg, overrides, out = _new_run(args, flags, clear)
    result = train(model, cfg, cfg.data, out, resume=bool(args.resume), overwrite=args.overwrite,
                   overrides=overrides)
    return 0 if not result.interrupted else 130


def _config_flags(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The run-config flags given, and the fields to clear: one of --steps / --epochs on the
    command line replaces both from the config file."""
    flags = {"data": args.data, "steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size,
             "lr": args.lr, "device": args.device, "compile": args.compile, "precision": args.precision,
             "seed": args.seed, "eval_every": args.eval_every, "save_every": args.save_every,
             "vocab": getattr(args, "vocab", None), "early_stop": args.early_stop,
             "log": tuple(dict.fromkeys(args.log)) if args.log else None, "max_params": args.max_params}
    clear = []
    if args.steps is not None:
        clear.append("epochs")
    if args.epochs is not None:
        clear.append("steps")
    return flags, clear


def _config_with(cfg, flags: dict, clear: list[str]):
    changes = {k: v for k, v in flags.items() if v is not None}
    changes.update({k: None for k in clear})
    return cfg.replace(**changes) if changes else cfg


def _resumed_run(args: argparse.Namespace, flags: dict, clear: list[str]):
    """(model, config, overrides, run folder) to continue the run in --resume."""
    from .config import load_config
    from .runfolder import RunError, load_run, run_spec

    run = Path(args.resume)
    if not os.path.lexists(run / "config.yaml"):
        raise RunError(f"cannot resume: '{args.resume}' has no config.yaml")
    if args.config:
        raise RunError("--config cannot change a resumed run; pass single flags instead")
    if args.set or args.weights or args.input:
        raise RunError("--set, --input and --weights cannot change a resumed run's model")
    cfg = _config_with(load_config(run / "config.yaml", in_run=True), flags, clear)
    spec = run_spec(run)
    if spec is not None:
        _check_size(spec, cfg)
    model, _, meta = load_run(run, weights=False)
    return model, cfg, meta.get("overrides"), run


def _check_size(spec: tuple, cfg) -> None:
    """The model's size against --max-params and the memory, counted on the meta device
    before anything is allocated. spec: (file, model, overrides, input shapes, import folders)."""
    from .distributed import resolve_device
    from .preflight import check_size
    from .runfolder import count_params

    name, n = count_params(*spec)
    check_size(name, n, cfg, resolve_device(cfg.device))


def _new_run(args: argparse.Namespace, flags: dict, clear: list[str]):
    """(model, config, overrides, run folder) of a new run of FILE."""
    from ..dsl.params import parse_input_shapes
    from .config import load_config
    from .runfolder import RunError, build_model, check_new_run
    from .trainer import seed_all

    if not args.file:
        raise RunError("train needs a spec FILE (or --resume RUN_DIR)")
    cfg = _config_with(load_config(args.config), flags, clear)
    overrides = parse_set(args.set)
    shapes = parse_input_shapes(args.input) or None
    if args.out:  # before minutes of building: a run there is kept unless asked
        check_new_run(Path(args.out), args.overwrite)
    _check_size((args.file, args.model, overrides, shapes, ()), cfg)
    seed_all(cfg.seed)  # the same seed gives the same initial weights
    model = build_model(args.file, args.model, overrides, shapes)
    if args.weights:
        from ..compiler import load_weights

        load_weights(model, args.weights, convert=args.convert)
    elif args.convert:
        raise RunError("--convert needs --weights FILE")
    out = Path(args.out) if args.out else _unique_dir(Path("runs") / model.netspec.name)
    return model, cfg, overrides, out


def cmd_eval(args: argparse.Namespace) -> int:
    """netspec eval RUN_DIR [--data SOURCE] [--json]"""
    from .data import load_data
    from .validation import evaluate
    from .heads import trained_heads
    from .metrics import METRICS
    from .runfolder import RunError, load_run, read_vocab

    if args.batches is not None and args.batches < 0:
        raise RunError("--batches must not be negative")
    model, cfg, meta = load_run(args.run_dir, device=args.device, checkpoint=args.checkpoint)
    source = args.data or meta.get("data") or cfg.data
    data = load_data(source, model.netspec, cfg, model=model, vocab=read_vocab(args.run_dir))
    res = evaluate(model, data, cfg, max_batches=args.batches or 0)
    if args.json:
        obj = {k: res[k] for k in ("loss", *METRICS) if k in res}
        heads: dict[str, dict] = {}
        for k, v in res.items():
            if "/" in k:
                h, m = k.split("/", 1)
                heads.setdefault(h, {})[m] = v
        if len(heads) > 1:
            obj["heads"] = heads
        print(json.dumps(obj))
    else:
        print(f"{meta.get('model')} on {data.name} ({len(data.val)} validation samples):")
        one_head = len(trained_heads(model.netspec)) == 1
        for k, v in res.items():
            if "/" not in k or not one_head:
                print(f"  {k:<22} {v:.4f}")
    return 0


MAX_TOKENS = 1_000_000  # tokens one `sample` generates at most: a slip past it would run for days


def cmd_sample(args: argparse.Namespace) -> int:
    """netspec sample RUN_DIR --prompt TEXT"""
    import torch

    from .data import Data, want_from_info
    from .runfolder import RunError, load_run, read_vocab
    from .sampling import generate, sampling_heads

    if not 0 <= args.tokens <= MAX_TOKENS:
        raise RunError(f"--tokens must be between 0 and {MAX_TOKENS:,}, got {args.tokens}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise RunError(f"--temperature must be a positive number, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise RunError(f"--top-k must be at least 1, got {args.top_k}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise RunError(f"--seed must be between 0 and 2**63-1, got {args.seed}")
    model, cfg, meta = load_run(args.run_dir, device=args.device, checkpoint=args.checkpoint)
    info = model.netspec
    heads = sampling_heads(info)
    if not heads:
        raise RunError(f"{info.name} has no lm head to sample from")
    vocab = read_vocab(args.run_dir)
    codec = Data(name="", kind="tokens", train=None, val=None, want=None, vocab=vocab)
    ids = codec.encode(args.prompt)
    if not ids:
        raise RunError("--prompt must not be empty")
    block = want_from_info(info, cfg.seq_len).seq_len
    if args.seed is not None:
        torch.manual_seed(args.seed)
    out = generate(model, ids, args.tokens, block_size=block, temperature=args.temperature, top_k=args.top_k,
                   head=heads[0].name, vocab_size=len(vocab) if vocab is not None else 256)
    sys.stdout.write(codec.decode(out) + "\n")
    return 0
