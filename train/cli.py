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
import sys
from pathlib import Path
from typing import Any


EPILOG_TRAIN = """\
data SOURCE: digits | shapes[:K] | pycode | pywords | seq2seq:reverse | seq2seq:add | moving[:K]
             | text:FILE | images:DIR | mnist:DIR | cifar10:DIR
             (a bare path is detected; without --data a built-in source that fits the model)
run folder:  config.yaml model.json spec/ (the spec and what it imports) metrics.csv curves.png
             model.safetensors state.pt figures/ (reconstructions, samples) critic.safetensors (a GAN's)
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
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--weights", metavar="FILE", help="start from these weights (safetensors / torch file)")
    p.add_argument("--convert", choices=("transformers",), help="convert --weights from this naming first")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--eval-every", type=int, metavar="N")
    p.add_argument("--save-every", type=int, metavar="N")
    return cmd_train


def _eval_args(p):
    p.description = "Loss and accuracy / IoU / perplexity of a run on the validation split."
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", metavar="SOURCE", help="data to evaluate on (default: the run's)")
    p.add_argument("--batches", type=int, metavar="N", help="cap on validation batches (default: all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--judge", metavar="RUN_DIR", help="a generator's run: let this classifier run label "
                   "1000 samples (classes covered, mean top-class probability)")
    return cmd_eval


def _sample_args(p):
    p.description = ("Generate from a run: text continuing --prompt (an lm head), the target decoded for the "
                     "source --prompt (a seq2seq head: printed alone), or a grid of images (an adversarial "
                     "head: written to --out).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", metavar="TEXT", help="the text to continue (lm) or the source (seq2seq)")
    p.add_argument("--tokens", type=int, default=200, metavar="N",
                   help="tokens to generate at most (default 200; a seq2seq target also ends at <eos>)")
    p.add_argument("--temperature", type=float, default=0.8, metavar="T", help="softmax temperature (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest only")
    p.add_argument("--greedy", action="store_true", help="take the likeliest token each time (no sampling)")
    p.add_argument("--out", "-o", metavar="PNG", help="adversarial: the image file to write (default samples.png)")
    p.add_argument("--count", type=int, default=64, metavar="N", help="adversarial: samples in the grid (default 64)")
    p.add_argument("--seed", type=int, default=None, metavar="N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
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
        model, cfg, overrides, out = _resumed_run(args, flags, clear)
    else:
        model, cfg, overrides, out = _new_run(args, flags, clear)
    result = train(model, cfg, cfg.data, out, resume=bool(args.resume), overrides=overrides)
    return 0 if not result.interrupted else 130


def _config_flags(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The run-config flags given, and the fields to clear: one of --steps / --epochs on the
    command line replaces both from the config file."""
    flags = {"data": args.data, "steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size,
             "lr": args.lr, "device": args.device, "compile": args.compile, "precision": args.precision,
             "seed": args.seed, "eval_every": args.eval_every, "save_every": args.save_every,
             "vocab": getattr(args, "vocab", None)}
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
    from .runfolder import RunError, load_run

    run = Path(args.resume)
    if not (run / "config.yaml").is_file():
        raise RunError(f"cannot resume: '{args.resume}' has no config.yaml")
    if args.config:
        raise RunError("--config cannot change a resumed run; pass single flags instead")
    if args.set or args.weights or args.input:
        raise RunError("--set, --input and --weights cannot change a resumed run's model")
    cfg = _config_with(load_config(run / "config.yaml"), flags, clear)
    model, _, meta = load_run(run, weights=False)
    return model, cfg, meta.get("overrides"), run


def _new_run(args: argparse.Namespace, flags: dict, clear: list[str]):
    """(model, config, overrides, run folder) of a new run of FILE."""
    from ..dsl.params import parse_input_shapes
    from ..dsl.errors import NetspecError
    from .pair import generator_overrides
    from .config import load_config
    from .runfolder import RunError, build_model
    from .trainer import seed_all

    if not args.file:
        raise RunError("train needs a spec FILE (or --resume RUN_DIR)")
    cfg = _config_with(load_config(args.config), flags, clear)
    overrides = parse_set(args.set)
    seed_all(cfg.seed)  # the same seed gives the same initial weights
    shapes = parse_input_shapes(args.input) or None
    try:
        model = build_model(args.file, args.model, overrides, shapes)
    except NetspecError:  # a generator's --set values may be its critic's: the trainer builds the critic
        mine = generator_overrides(args.file, args.model, overrides)
        if mine is None:
            raise
        model = build_model(args.file, args.model, mine, shapes)
    if args.weights:
        from ..compiler import load_weights

        load_weights(model, args.weights, convert=args.convert)
    elif args.convert:
        raise RunError("--convert needs --weights FILE")
    out = Path(args.out) if args.out else _unique_dir(Path("runs") / model.netspec.name)
    return model, cfg, overrides, out


def cmd_eval(args: argparse.Namespace) -> int:
    """netspec eval RUN_DIR [--data SOURCE] [--json] [--judge RUN_DIR]"""
    from . import adversarial, judge, pair
    from .data import load_data
    from .heads import trained_heads
    from .metrics import METRICS
    from .runfolder import RunError, load_run, read_vocab
    from .validation import evaluate

    model, cfg, meta = load_run(args.run_dir, device=args.device)
    info = model.netspec
    source = args.data or meta.get("data") or cfg.data
    gan = pair.adversarial_head(info)
    if args.judge and gan is None:
        raise RunError(f"--judge rates a generator's samples, but {info.name} has no adversarial head")
    if gan is not None:  # the critic's verdicts, and a classifier's on the samples
        critic = pair.load_critic(args.run_dir, info, next(model.parameters()).device)
        data = pair.critic_data(source, info, critic, cfg)
        res = adversarial.evaluate_pair(model, critic, gan.name, data, cfg, max_batches=args.batches or 0)
        judged = judge.judge(model, gan.name, args.judge) if args.judge else None
    else:
        data = load_data(source, info, cfg, model=model, vocab=read_vocab(args.run_dir))
        res = evaluate(model, data, cfg, max_batches=args.batches or 0)
        judged = None
    if args.json:
        obj = {k: res[k] for k in ("loss", "critic_loss", *METRICS) if k in res}
        heads: dict[str, dict] = {}
        for k, v in res.items():
            if "/" in k:
                h, m = k.split("/", 1)
                heads.setdefault(h, {})[m] = v
        if len(heads) > 1:
            obj["heads"] = heads
        if judged is not None:
            obj["judge"] = judged
        print(json.dumps(obj))
        return 0
    print(f"{meta.get('model')} on {data.name} ({len(data.val)} validation samples):")
    one_head = len(trained_heads(info)) == 1
    for k, v in res.items():
        if "/" not in k or not one_head:
            print(f"  {k:<22} {v:.4f}")
    if judged is not None:
        print(f"{args.judge} labels {judged['samples']} samples: {judged['classes_covered']} of "
              f"{judged['classes']} classes covered (>= 1% each), mean top-class probability "
              f"{judged['mean_top_probability']:.3f}")
        print("  " + "  ".join(f"{k}: {v:.1%}" for k, v in judged["class_shares"].items()))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """netspec sample RUN_DIR [--prompt TEXT] [-o PNG]"""
    import torch

    from .runfolder import RunError, load_run
    from .heads import trained_heads

    model, cfg, meta = load_run(args.run_dir, device=args.device)
    info = model.netspec
    head = next((h for h in trained_heads(info) if h.task in SAMPLERS), None)
    if head is None:
        raise RunError(f"{info.name} has no lm, seq2seq or adversarial head to sample from")
    if args.tokens < 0:
        raise RunError("--tokens must not be negative")
    if args.temperature <= 0:
        raise RunError("--temperature must be positive")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    return SAMPLERS[head.task](args, model, cfg, meta, head)


def _prompt_ids(args: argparse.Namespace, codec) -> list[int]:
    from .runfolder import RunError

    if args.prompt is None:
        raise RunError("sampling this run needs --prompt TEXT")
    ids = codec.encode(args.prompt)
    if not ids:
        raise RunError("--prompt must not be empty")
    return ids


def _codec(args: argparse.Namespace):
    from .data import Data
    from .runfolder import read_vocab

    return Data(name="", kind="tokens", train=None, val=None, want=None, vocab=read_vocab(args.run_dir))


def _sample_text(args, model, cfg, meta, head) -> int:
    """An lm head: the prompt and its continuation."""
    from .data import want_from_info
    from .sampling import generate

    codec = _codec(args)
    ids = _prompt_ids(args, codec)
    block = want_from_info(model.netspec, cfg.seq_len).seq_len
    out = generate(model, ids, args.tokens, block_size=block, temperature=args.temperature, top_k=args.top_k,
                   head=head.name, vocab_size=len(codec.vocab) if codec.vocab is not None else 256,
                   greedy=args.greedy)
    sys.stdout.write(codec.decode(out) + "\n")
    return 0


def _sample_target(args, model, cfg, meta, head) -> int:
    """A seq2seq head: the target decoded for the prompt as source, alone."""
    from .data.seq2seq import SPECIALS
    from .runfolder import RunError
    from .sampling import translate

    codec = _codec(args)
    if codec.vocab is None or not set(SPECIALS) <= set(codec.vocab):
        raise RunError(f"'{args.run_dir}' has no seq2seq vocabulary (vocab.json with {', '.join(SPECIALS)})")
    specials = {s.strip("<>"): codec.vocab.index(s) for s in SPECIALS}
    ids = _prompt_ids(args, codec)
    out = translate(model, ids, head=head.name, specials=specials, max_tokens=args.tokens,
                    temperature=args.temperature, top_k=args.top_k, greedy=args.greedy,
                    vocab_size=len(codec.vocab))
    sys.stdout.write(codec.decode(out) + "\n")
    return 0


def _sample_images(args, model, cfg, meta, head) -> int:
    """An adversarial head: a grid of generated images, written to --out."""
    from .judge import sample_grid
    from .runfolder import RunError

    if args.count < 1:
        raise RunError("--count must be at least 1")
    path = sample_grid(model, head.name, args.count, Path(args.out or "samples.png"))
    print(f"wrote {args.count} samples of {model.netspec.name} to {path}")
    return 0


# head task -> how `netspec sample` generates from it
SAMPLERS = {"lm": _sample_text, "seq2seq": _sample_target, "adversarial": _sample_images}
