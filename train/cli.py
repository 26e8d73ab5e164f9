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
data SOURCE: digits | shapes[:K] | pycode | pywords | seq2seq:reverse | seq2seq:add | moving[:K]
             | text:FILE | images:DIR | mnist:DIR | cifar10:DIR | csv:FILE (--target, --features)
             | npy:X.npy[,Y.npy]
             (a bare path is detected; without --data a built-in source that fits the model)
run folder:  config.yaml model.json spec/ (the spec and what it imports) metrics.csv curves.png
             data.json (what `netspec predict` needs) last/ (weights + training state, to resume)
             best/ (best weights; a GAN has none, its last/ holds critic.safetensors too)
             figures/ (reconstructions, samples) [tensorboard/]
fine-tuning: --weights FILE [--reinit fc] [--strict false] [--freeze 'layer[1-3]']
"""


def _train_args(p):
    p.epilog = EPILOG_TRAIN
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("file", nargs="?", metavar="FILE", help="spec file (not needed with --resume)")
    p.add_argument("--model", help="model of the file (default: its default / only model)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override model parameters, e.g. --set d=64 layers=2 (before or after FILE)")
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
    p.add_argument("--tf32", type=_boolean, metavar="true|false",
                   help="CUDA: TF32 float32 matmuls and convolutions (default true)")
    p.add_argument("--channels-last", choices=("auto", "true", "false"),
                   help="NHWC layout for models with Conv2d (default auto: on CUDA)")
    p.add_argument("--pad-vocab", type=int, metavar="N",
                   help="lm: round the model's vocab_size up to a multiple of N (64 is faster on GPUs); "
                        "the padded ids never reach the loss or sampling")
    p.add_argument("--strategy", choices=("ddp", "fsdp"),
                   help="under torchrun: ddp replicates the model (default), fsdp shards parameters, "
                        "gradients and optimizer state (FSDP2)")
    p.add_argument("--vocab", choices=("bytes", "char"), help="text data: byte or character vocabulary")
    p.add_argument("--target", metavar="COLUMNS", help="csv data: the label / target column(s), comma-separated "
                   "(default: label, target, class or y, else the last column)")
    p.add_argument("--features", metavar="COLUMNS", help="csv data: the feature columns, comma-separated "
                   "(default: every other column)")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<model>[-N])")
    p.add_argument("--overwrite", action="store_true", help="train anew into an --out that holds a run")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--weights", metavar="FILE", help="start from these weights (safetensors / torch file)")
    p.add_argument("--convert", choices=("transformers",), help="convert --weights from this naming first")
    p.add_argument("--reinit", action="append", default=[], metavar="PATTERN",
                   help="with --weights: keep these layers at their fresh initialisation (a new head: --reinit fc)")
    p.add_argument("--strict", type=_boolean, default=True, metavar="true|false",
                   help="with --weights: false loads the tensors that fit and lists the rest (default true)")
    p.add_argument("--freeze", action="append", default=[], metavar="PATTERN",
                   help="do not train these layers (a glob over layer paths: conv1, 'layer[1-3]'; repeat or "
                        "separate with commas)")
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
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="last", help="weights to sample (default last)")
    return cmd_sample


def _boolean(text: str) -> bool:
    low = text.lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def _predict_args(p):
    p.description = ("Run a trained model on new inputs: image files or folders (class names and "
                     "probabilities), a .csv or .npy of vectors, or prompts for an lm run (as `sample`).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files / folders, .npy / .csv files, or "
                   "prompt text (lm runs)")
    p.add_argument("--json", action="store_true", help="print a JSON list: input, and per head its class and "
                   "probabilities / values / pixel shares")
    p.add_argument("--top", type=int, default=3, metavar="N", help="classes shown per input (default 3)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="last", help="weights to use (default last)")
    g = p.add_argument_group("lm runs (as netspec sample)")
    g.add_argument("--tokens", type=int, default=200, metavar="N", help="tokens to generate (default 200)")
    g.add_argument("--temperature", type=float, default=0.8, metavar="T", help="softmax temperature (default 0.8)")
    g.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest only")
    g.add_argument("--seed", type=int, default=None, metavar="N")
    return cmd_predict


# command -> function that adds its arguments and returns its handler
ARGUMENTS = {"train": _train_args, "eval": _eval_args, "sample": _sample_args, "predict": _predict_args}


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
             "vocab": getattr(args, "vocab", None), "target": args.target, "features": args.features,
             "early_stop": args.early_stop, "log": tuple(dict.fromkeys(args.log)) if args.log else None,
             "max_params": args.max_params, "tf32": args.tf32, "channels_last": args.channels_last,
             "pad_vocab": args.pad_vocab, "strategy": args.strategy}
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
    if args.set or args.weights or args.input or args.freeze or args.reinit or args.pad_vocab is not None:
        raise RunError("--set, --input, --weights, --reinit, --freeze and --pad-vocab cannot change a resumed "
                       "run's model")
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
    from ..dsl.errors import NetspecError
    from .pair import generator_overrides
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
    overrides, cfg = _padded_vocab(args.file, args.model, overrides, shapes, cfg)
    mine = overrides
    try:
        _check_size((args.file, args.model, mine, shapes, ()), cfg)
    except NetspecError:  # a generator's --set values may be its critic's: the trainer builds the critic
        mine = generator_overrides(args.file, args.model, overrides)
        if mine is None:
            raise
        _check_size((args.file, args.model, mine, shapes, ()), cfg)
    seed_all(cfg.seed)  # the same seed gives the same initial weights
    model = build_model(args.file, args.model, mine, shapes)
    if args.weights:
        _start_weights(model, args)
    else:
        for flag, given in (("--convert", args.convert), ("--reinit", args.reinit),
                            ("--strict", not args.strict)):
            if given:
                raise RunError(f"{flag} needs --weights FILE")
    if args.freeze:
        from ..compiler import freeze

        freeze(model, args.freeze, flag="--freeze")
    out = Path(args.out) if args.out else _unique_dir(Path("runs") / model.netspec.name)
    return model, cfg, overrides, out


def _padded_vocab(file, model_name, overrides: dict, shapes, cfg):
    """(overrides, cfg) with vocab_size padded to cfg.pad_vocab (see vocabpad.py); the spec is
    analysed on the meta device to read its vocab_size, nothing is allocated."""
    if not cfg.pad_vocab:
        return overrides, cfg
    from .. import compiler
    from .vocabpad import pad_overrides

    info = compiler.analyze(str(file), model_name, overrides,
                            **({"input_shapes": shapes} if shapes else {})).info
    return pad_overrides(info.name, info.params, overrides, cfg)


def _start_weights(model, args: argparse.Namespace) -> None:
    """Load --weights into the new model: --reinit layers keep their initialisation; with
    --strict false what does not fit is listed as a table and keeps its initialisation too."""
    from ..compiler import WeightsError, load_weights, select

    select(model, args.reinit, flag="--reinit")  # a pattern that names nothing is an error of its own
    try:
        report = load_weights(model, args.weights, convert=args.convert, strict=args.strict, reinit=args.reinit)
    except WeightsError as e:
        if e.report is not None and e.report.mismatched:  # a layer of a new size: most often a new head
            layers = sorted({k.rpartition(".")[0] or k for k, _, _ in e.report.mismatched})
            e.diagnostics[-1].notes.append((None, f"to train {', '.join(layers)} anew, add --reinit "
                                                  f"{','.join(layers)}; to load only what fits, --strict false"))
        raise
    if not _is_main_process():
        return
    print(f"{args.weights}: {report.summary()}")
    if not report.ok:
        print(report.table())


def _is_main_process() -> bool:
    """Rank 0 under torchrun (or no torchrun): the process that prints."""
    import os

    return os.environ.get("RANK", "0") == "0"


def cmd_eval(args: argparse.Namespace) -> int:
    """netspec eval RUN_DIR [--data SOURCE] [--json] [--judge RUN_DIR]"""
    from . import pair
    from .data import load_data
    from .heads import trained_heads
    from .metrics import METRICS
    from .runfolder import RunError, load_run, read_vocab
    from .validation import evaluate

    if args.batches is not None and args.batches < 0:
        raise RunError("--batches must not be negative")
    model, cfg, meta = load_run(args.run_dir, device=args.device, checkpoint=args.checkpoint)
    info = model.netspec
    source = args.data or meta.get("data") or cfg.data
    gan = pair.adversarial_head(info)
    if args.judge and gan is None:
        raise RunError(f"--judge rates a generator's samples, but {info.name} has no adversarial head")
    if gan is not None:  # the critic's verdicts, and a classifier's on the samples
        from . import adversarial, judge

        critic = pair.load_critic(args.run_dir, info, next(model.parameters()).device, args.checkpoint)
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

    from .heads import trained_heads
    from .runfolder import RunError, load_run
    from .sampling import check_settings

    check_settings(args.tokens, args.temperature, args.top_k, args.seed)
    model, cfg, meta = load_run(args.run_dir, device=args.device, checkpoint=args.checkpoint)
    info = model.netspec
    head = next((h for h in trained_heads(info) if h.task in SAMPLERS), None)
    if head is None:
        raise RunError(f"{info.name} has no lm, seq2seq or adversarial head to sample from")
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
    from .runfolder import RunError, read_vocab
    from .sampling import complete_text

    if args.prompt is None:
        raise RunError("sampling this run needs --prompt TEXT")
    sys.stdout.write(complete_text(model, args.prompt, vocab=read_vocab(args.run_dir), seq_len=cfg.seq_len,
                                   tokens=args.tokens, temperature=args.temperature, top_k=args.top_k,
                                   seed=args.seed, greedy=args.greedy, head=head.name, vocab_limit=cfg.vocab_limit) + "\n")
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


def cmd_predict(args: argparse.Namespace) -> int:
    """netspec predict RUN_DIR INPUT... [--json]"""
    from .predict import format_result, open_run, read_inputs, run_samples
    from .runfolder import RunError
    from .sampling import check_settings, complete_text

    if args.top < 1 or args.batch_size < 1:
        raise RunError(f"{'--top' if args.top < 1 else '--batch-size'} must be at least 1")
    check_settings(args.tokens, args.temperature, args.top_k, args.seed)
    run = open_run(args.run_dir, args.device, args.checkpoint)
    if run.want.kind == "tokens":
        texts = [complete_text(run.model, prompt, vocab=run.vocab, seq_len=run.seq_len, tokens=args.tokens,
                               temperature=args.temperature, top_k=args.top_k, seed=args.seed,
                               vocab_limit=run.vocab_limit)
                 for prompt in args.inputs]
        if args.json:
            print(json.dumps([{"input": p, "text": t} for p, t in zip(args.inputs, texts)], ensure_ascii=False))
        else:
            sys.stdout.write("\n".join(texts) + "\n")
        return 0
    results = run_samples(run, read_inputs(run, args.inputs), args.batch_size)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            print(format_result(r, args.top))
    return 0
