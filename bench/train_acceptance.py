"""Acceptance runs of the training runtime: every architecture of the README's results table,
on built-in data, with the numbers the table shows.

    .venv/bin/python bench/train_acceptance.py                 # all of them (most of an hour on 2 cores)
    .venv/bin/python bench/train_acceptance.py lenet gan add   # some of them
    .venv/bin/python bench/train_acceptance.py --threads 1     # torch threads per run (a shared machine)
    .venv/bin/python bench/train_acceptance.py --reference     # the first four: tests/reference models

Two kinds of run. The first four (lenet, gpt, unet, resnet) go through the Python API that
`netspec train` uses (netspec.build + trainer.train), from the stdlib specs:
    lenet   LeNet-5 on digits       val accuracy >= 0.97 in under 60 s (default RunConfig)
    gpt     GPT-2 small-ish on pycode (n_layer=4 n_head=4 n_embd=128 block_size=128), a few minutes:
            val loss far under ln(256) = 5.55 nats, and samples that look like Python
    unet    UNet on shapes           val mean IoU >= 0.9
    resnet  ResNet18 on shapes       val accuracy >= 0.95
The others run the very `netspec train` / `eval` / `sample` commands the README shows (COMMANDS
below), as subprocesses, and read the figures back from `netspec eval --json`:
    autoencoder  specs/autoencoder.nn on digits: val MSE <= 1/4 of predicting the mean image
    judge        specs/digits_cnn.nn on digits (28x28): the classifier that labels the GAN's samples
    gan          specs/gan.nn on digits: samples cover >= 8 of 10 classes, mean top-class prob >= 0.8
    reverse      specs/transformer.nn on seq2seq:reverse: exact match >= 0.99
    add          specs/transformer.nn on seq2seq:add: exact match >= 0.90 on held-out pairs
    video3d      specs/video.nn Conv3dClassifier on moving clips: accuracy, params, MACs, time
    video21d     specs/video.nn R2Plus1dClassifier, the same
    charrnn      specs/char_rnn.nn (LSTM) on pycode: val loss, beside
    gptrnn       specs/gpt_outline.nn, a GPT of about the same size, same steps and data
word2vec's four losses have their own bench: bench/word2vec_losses.py.

Each run leaves its run folder under bench/runs/<name>; the end reprints the README's table rows.
Not a test: it takes minutes per run. Times depend on the machine's load: run it alone.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netspec.train.config import RunConfig  # noqa: E402


@dataclass
class Target:
    name: str
    specs: list[str]  # candidate spec files (first that exists)
    models: list[str | None]  # candidate model names in it (None: the file's default)
    overrides: dict  # --set values, dropped one by one if the spec lacks them
    cfg: dict  # RunConfig fields
    metric: str
    goal: float  # metric must reach this (loss: stay under)
    budget_s: float | None = None  # wall-clock target
    image_size: tuple[int, int] | None = None  # H x W for symbolic image inputs
    classes: int | None = None  # set through a classes-like parameter when the spec has one
    notes: list[str] = field(default_factory=list)


TARGETS = {
    "lenet": Target("lenet", ["stdlib/lenet.nn", "stdlib/lenet5.nn"], ["LeNet5", "LeNet", None], {},
                    dict(data="digits"), "accuracy", 0.97, budget_s=60),
    "gpt": Target("gpt", ["stdlib/gpt2.nn", "stdlib/gpt.nn"], ["GPT2", "GPT", None],
                  dict(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=256, dropout=0.0),
                  dict(data="pycode", steps=600, batch_size=32, lr=2e-3, warmup_steps=100, eval_every=200,
                       eval_batches=20, weight_decay=0.1), "loss", 2.5),
    "unet": Target("unet", ["stdlib/unet.nn"], ["UNet", None], dict(base_channels=16, padding="same"),
                   dict(data="shapes", steps=1200, batch_size=16, lr=2e-3, eval_every=300, eval_batches=20),
                   "iou", 0.9, image_size=(64, 64), classes=4),
    "resnet": Target("resnet", ["stdlib/resnet18.nn", "stdlib/resnet.nn"], ["ResNet18", "ResNet", None], {},
                     dict(data="shapes", steps=600, batch_size=64, lr=2e-3, eval_every=200, eval_batches=10),
                     "accuracy", 0.95, image_size=(32, 32), classes=4),
}

CLASS_PARAMS = ("num_classes", "classes", "n_classes", "out_classes", "out_channels")


@dataclass
class Command:
    """A run of `netspec train ARGS --out bench/runs/NAME`, judged by `netspec eval --json`."""

    name: str
    args: str  # what follows `netspec train`, as the README shows it
    metric: str  # a key of `netspec eval --json` (or of `judge` for the GAN)
    goal: float | None  # the metric must reach this (loss: stay under); None: reported only
    after: list[str] = field(default_factory=list)  # runs whose folders this one uses
    judge: str | None = None  # GAN: the classifier run that labels its samples
    summary: str | None = None  # FILE [--model M]: report parameters and MACs per sample
    samples: list[str] = field(default_factory=list)  # --prompt values to decode greedily after training
    also: list[str] = field(default_factory=list)  # more keys of `netspec eval --json` to show


COMMANDS = {c.name: c for c in (
    Command("autoencoder", "specs/autoencoder.nn --data digits --steps 600", "relative_mse", 0.25),
    Command("judge", "specs/digits_cnn.nn --data digits --steps 500", "accuracy", 0.97),
    Command("gan", "specs/gan.nn --data digits --set ngf=32 ndf=32 --config specs/gan.yaml", "classes_covered",
            8, after=["judge"], judge="judge"),
    Command("reverse", "specs/transformer.nn --data seq2seq:reverse --input src=1x8 tgt=1x10 "
            "--set src_vocab=32 tgt_vocab=32 --steps 600", "exact_match", 0.99, samples=["netspec"]),
    Command("add", "specs/transformer.nn --data seq2seq:add --input src=1x8 tgt=1x6 "
            "--set src_vocab=16 tgt_vocab=16 --steps 1500", "exact_match", 0.90, samples=["123+456="]),
    Command("video3d", "specs/video.nn --model Conv3dClassifier --data moving --steps 300 --batch-size 32",
            "accuracy", None, summary="specs/video.nn --model Conv3dClassifier", also=["loss"]),
    Command("video21d", "specs/video.nn --model R2Plus1dClassifier --data moving --steps 300 --batch-size 32",
            "accuracy", None, summary="specs/video.nn --model R2Plus1dClassifier", also=["loss"]),
    Command("charrnn", "specs/char_rnn.nn --set vocab=256 --data pycode --steps 500 --batch-size 32", "loss",
            None, summary="specs/char_rnn.nn --set vocab=256"),
    Command("gptrnn", "specs/gpt_outline.nn --set block_size=100 --data pycode --steps 500 --batch-size 32",
            "loss", None, summary="specs/gpt_outline.nn --set block_size=100"),
)}


def build_from_stdlib(t: Target):
    import netspec

    spec = next((REPO / s for s in t.specs if (REPO / s).is_file()), None)
    if spec is None:
        raise SystemExit(f"{t.name}: none of {', '.join(t.specs)} exists yet")
    last = None
    for model in t.models:
        try:
            a = netspec.analyze(str(spec), model)
        except Exception as e:  # noqa: BLE001 - try the next candidate model name
            last = e
            continue
        params = a.info.params
        over = {k: v for k, v in t.overrides.items() if k in params}
        dropped = sorted(set(t.overrides) - set(over))
        if dropped:
            t.notes.append(f"spec has no parameter(s) {', '.join(dropped)}")
        if t.classes is not None:
            key = next((k for k in CLASS_PARAMS if k in params), None)
            if key:
                over[key] = t.classes
        shapes = None
        inp = a.info.inputs[0]
        if t.image_size and len(inp.dims) == 4 and not all(isinstance(d, int) for d in inp.dims[2:]):
            shapes = {inp.name: (1, inp.shape[1], *t.image_size)}
        return netspec.build(str(spec), model, input_shapes=shapes, **over), spec, over
    raise SystemExit(f"{t.name}: no model {t.models} in {spec}: {last}")


def build_reference(t: Target):
    import torch  # noqa: F401

    from netspec.compiler.info import HeadInfo, InputInfo, ModelInfo

    def info(name, inp, heads, **params):
        return ModelInfo(name, "<reference>", params, (inp,), tuple(heads))

    if t.name == "lenet":
        from tests.reference.lenet import LeNet5

        m = LeNet5()
        m.netspec = info("LeNet5", InputInfo("x", "float32", ("B", 1, 32, 32), (1, 1, 32, 32)),
                         [HeadInfo("logits", "classify", shape=(1, 10))])
    elif t.name == "gpt":
        from tests.reference.gpt2 import GPT, GPTConfig

        o = t.overrides
        m = GPT(GPTConfig(vocab_size=256, block_size=o["block_size"], n_layer=o["n_layer"], n_head=o["n_head"],
                          n_embd=o["n_embd"], dropout=0.0))
        m.netspec = info("GPT", InputInfo("idx", "int64", ("B", "T"), (1, o["block_size"])),
                         [HeadInfo("logits", "lm", shape=(1, o["block_size"], 256))], block_size=o["block_size"])
    elif t.name == "unet":
        from tests.reference.unet import UNet

        h, w = t.image_size
        m = UNet(in_channels=3, num_classes=t.classes, base_channels=16, padding="same")
        m.netspec = info("UNet", InputInfo("x", "float32", ("B", 3, h, w), (1, 3, h, w)),
                         [HeadInfo("mask", "segment", shape=(1, t.classes, h, w))])
    else:
        from tests.reference.resnet import resnet18

        h, w = t.image_size
        m = resnet18(num_classes=t.classes)
        m.netspec = info("ResNet18", InputInfo("x", "float32", ("B", 3, h, w), (1, 3, h, w)),
                         [HeadInfo("logits", "classify", shape=(1, t.classes))])
    return m, None, {}


def run(t: Target, reference: bool, device: str, out_root: Path) -> bool:
    import torch

    from netspec.train.sampling import generate
    from netspec.train.trainer import seed_all, train

    cfg = RunConfig(**{**t.cfg, "device": device})
    seed_all(cfg.seed)
    model, spec, over = build_reference(t) if reference else build_from_stdlib(t)
    print(f"\n=== {t.name}: {model.netspec.name} from {spec or 'tests/reference'} {over or ''}", flush=True)
    for n in t.notes:
        print(f"note: {n}")
    t0 = time.time()
    r = train(model, cfg, cfg.data, out_root / t.name, overrides=over)
    secs = time.time() - t0
    value = r.val.get(t.metric, r.val.get("loss"))
    ok = value <= t.goal if t.metric == "loss" else value >= t.goal
    if t.budget_s is not None:
        ok = ok and secs <= t.budget_s
    if t.name == "gpt":
        torch.manual_seed(0)
        ids = generate(model, list(b"def "), 300, block_size=cfg.seq_len or model.netspec.params.get("block_size", 128),
                       temperature=0.8, top_k=None, vocab_size=256)
        print("--- sample ---\n" + bytes(ids).decode("utf-8", errors="replace") + "\n--------------")
        print(f"(uniform bytes would be {math.log(256):.2f} nats)")
    goal = f"{'<=' if t.metric == 'loss' else '>='} {t.goal}" + (f" in <= {t.budget_s:.0f}s" if t.budget_s else "")
    print(f"RESULT {t.name}: {t.metric} {value:.4f} ({goal}) in {secs:.0f}s -> {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def netspec_cli(args: list[str], env: dict, check: bool = True) -> str:
    """Run `python -m netspec ARGS` from the repository; its stdout."""
    import subprocess

    r = subprocess.run([sys.executable, "-m", "netspec", *args], cwd=REPO, env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and r.returncode != 0:
        raise SystemExit(f"`netspec {' '.join(args)}` failed:\n{r.stdout}")
    return r.stdout


def run_command(c: Command, out_root: Path, env: dict) -> tuple[bool, str]:
    """Train, evaluate and report one COMMANDS run; (passed, the README's result cell)."""
    import json
    import shlex

    out = out_root / c.name
    print(f"\n=== {c.name}: netspec train {c.args}", flush=True)
    t0 = time.time()
    log = netspec_cli(["train", *shlex.split(c.args), "--out", str(out)], env)
    secs = time.time() - t0
    print("\n".join(log.splitlines()[-3:]), flush=True)
    eval_args = ["eval", str(out), "--json"] + (["--judge", str(out_root / c.judge)] if c.judge else [])
    res = json.loads(netspec_cli(eval_args, env).strip().splitlines()[-1])
    parts = []
    if c.judge:
        j = res["judge"]
        value = j["classes_covered"]
        ok = value >= c.goal and j["mean_top_probability"] >= 0.8
        parts.append(f"samples cover **{value} of {j['classes']}** digit classes, mean top-class probability "
                     f"**{j['mean_top_probability']:.3f}** (DigitsCNN judge, 1000 samples)")
        netspec_cli(["sample", str(out), "-o", str(out / "samples.png"), "--seed", "0"], env)
    else:
        value = res[c.metric]
        ok = c.goal is None or (value <= c.goal if c.metric in ("loss", "relative_mse") else value >= c.goal)
        shown = {"relative_mse": f"validation MSE **{res.get('mse', 0):.4f}** = **{value:.3f}**× that of "
                                 "predicting the mean image",
                 "exact_match": f"**{value:.1%}** exact match on {'held-out ' if c.name == 'add' else ''}"
                                "validation pairs",
                 "accuracy": f"validation accuracy **{value:.1%}**",
                 "loss": f"validation loss **{value:.3f}** nats/byte"}[c.metric]
        parts.append(shown)
        parts += [f"validation {k} {res[k]:.4f}" for k in c.also]
    if c.summary:
        info = json.loads(netspec_cli(["summary", *shlex.split(c.summary), "--json"], env))
        parts.append(f"{info['params']:,} parameters, {info['macs'] / 1e6:,.1f}M MACs per sample")
    for prompt in c.samples:
        got = netspec_cli(["sample", str(out), "--prompt", prompt, "--greedy"], env).strip()
        parts.append(f"`{prompt}` → `{got}`")
    parts.append(f"{format_secs(secs)}")
    goal = "" if c.goal is None else f" (goal {'<=' if c.metric in ('loss', 'relative_mse') else '>='} {c.goal})"
    print(f"RESULT {c.name}: {c.metric} {value}{goal} in {secs:.0f}s -> {'PASS' if ok else 'FAIL'}", flush=True)
    return ok, "; ".join(parts)


def format_secs(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def main() -> int:
    import os

    names_all = list(TARGETS) + list(COMMANDS)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"which runs: {', '.join(names_all)} (default: all)")
    ap.add_argument("--reference", action="store_true", help="use tests/reference models, not stdlib specs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    ap.add_argument("--out", default=str(REPO / "bench" / "runs"))
    args = ap.parse_args()
    names = args.names or names_all
    unknown = [n for n in names if n not in names_all]
    if unknown:
        ap.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(names_all)}")
    for n in list(names):  # a run that needs another's folder runs after it
        for dep in COMMANDS[n].after if n in COMMANDS else []:
            if dep not in names and not (Path(args.out) / dep / "model.json").is_file():
                names.insert(names.index(n), dep)
    env = dict(os.environ)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = str(args.threads)
    results, cells = {}, {}
    for n in names:
        if n in TARGETS:
            results[n] = run(TARGETS[n], args.reference, args.device, Path(args.out))
        else:
            results[n], cells[n] = run_command(COMMANDS[n], Path(args.out), env)
    print("\n" + "  ".join(f"{n}: {'PASS' if ok else 'FAIL'}" for n, ok in results.items()))
    if cells:
        print("\n| command | result |\n|---|---|")
        for n, cell in cells.items():
            print(f"| `netspec train {COMMANDS[n].args}` | {cell} |")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
