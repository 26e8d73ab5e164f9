"""`make demo`: the main job, end to end, in a few minutes on a laptop CPU.

1. checks every stdlib spec (all models) and renders each default model to out/demo/;
2. trains LeNet-5 on scikit-learn's bundled digits and prints its validation accuracy;
3. trains a tiny GPT-2 on bytes of Python's own standard library and prints a sample.

    .venv/bin/python -m netspec.demo [--out out/demo] [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from .cli import main as netspec
from .dsl.library import stdlib_files

RENDER_DEPTH = {"resnet": 2, "gpt2": 3}  # deep networks read best with their repeats folded


def step(console: Console, title: str):
    console.rule(f"[bold]{title}")


def run(argv: list[str]) -> None:
    code = netspec(argv)
    if code:
        sys.exit(f"demo: `netspec {' '.join(argv)}` failed with exit code {code}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/demo", help="where diagrams and runs go")
    p.add_argument("--quick", action="store_true", help="fewer training steps (a smoke test)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    t0 = time.time()

    step(console, "1. check and render the standard library")
    for name in stdlib_files():  # by name, as a user would: `netspec check gpt2`
        run(["check", name, "--all"])
        depth = RENDER_DEPTH.get(name)
        run(["render", name, "-o", str(out / f"{name}.svg")] + (["--depth", str(depth)] if depth else []))

    step(console, "2. train LeNet-5 on the digits bundled with scikit-learn")
    lenet_run = out / "lenet"
    run(["train", "lenet", "--data", "digits", "--steps", "150" if args.quick else "600",
         "--out", str(lenet_run), "--overwrite", "--seed", "0"])  # the demo's own folder: replaced each time
    metrics = _eval(lenet_run)
    console.print(f"[bold green]LeNet-5 validation accuracy: {metrics['accuracy']:.2%}[/] "
                  f"(loss {metrics['loss']:.4f}) -> {lenet_run}")

    step(console, "3. train a tiny GPT-2 on bytes of Python's standard library, then sample")
    gpt_run = out / "gpt2"
    run(["train", "gpt2", "--set", "n_layer=2", "n_head=4", "n_embd=128", "block_size=64",
         "vocab_size=256", "dropout=0.0", "--data", "pycode", "--steps", "60" if args.quick else "1000",
         "--batch-size", "32", "--lr", "2e-3", "--out", str(gpt_run), "--overwrite", "--seed", "0"])
    metrics = _eval(gpt_run)
    console.print(f"[bold green]tiny GPT-2 validation loss: {metrics['loss']:.3f} nats/byte[/] "
                  f"(uniform over 256 bytes: 5.545)")
    run(["sample", str(gpt_run), "--prompt", "def ", "--tokens", "200", "--temperature", "0.8", "--seed", "0"])
    console.print(f"\ndemo finished in {time.time() - t0:.0f}s; diagrams and runs in {out}/")
    return 0


def _eval(run_dir: Path) -> dict:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run(["eval", str(run_dir), "--json"])
    return json.loads(buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
