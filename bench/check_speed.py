"""Benchmark: how fast specs are checked, from 10 layers to 10,000, and whole `netspec check`
processes against a bare `python -c "import torch"`.

Table 1 generates specs with N layers (a deep MLP written out line by line, and the same
depth as a repeated block) and times each front-end stage and the full `analyze`
(lowering on the meta device + shape inference), with the time per layer: linear in
the size means a flat last column. Table 2 runs processes, best of several:
`netspec check stdlib/gpt2.nn` (issue 9: at most 1.3x the bare torch import) and GPT-2
with 1,000 layers (issue 9: under 1 s beyond torch's import).

The largest specs are past the default limits on what a spec may ask (dsl/limits.py: 128 KB
per file, 10,000 layers and ops per model): the in-process table raises them for its specs,
and the 1,000-layer GPT-2 (about 30,000 ops) runs with `--limit layers=100000`, as a user would.

    .venv/bin/python bench/check_speed.py [N ...]        # default 10 100 1000 10000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def flat_spec(n: int) -> str:
    lines = ["model Deep(d=64):", "    input x: float[B=8, d]"]
    for i in range(n // 2):
        lines.append(f"    fc{i}: Linear(d, d)")
        lines.append("    ReLU()")
    lines.append("    head out")
    return "\n".join(lines) + "\n"


def repeated_spec(n: int) -> str:
    return (f"block Layer(d):\n    fc: Linear(d, d)\n    ReLU()\n\n"
            f"model Deep(d=64):\n    input x: float[B=8, d]\n    h:\n        repeat {n // 2}:\n"
            f"            Layer(d)\n    head out\n")


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def stages(sizes) -> None:
    import torch  # noqa: F401  (its import kept out of the timings)

    from netspec.compiler.builder import analyze
    from netspec.compiler.cli import front_end_gc
    from netspec.dsl import limits
    from netspec.dsl.frontend import elaborate
    from netspec.dsl.parser import parse

    front_end_gc()  # as `netspec check` runs
    print("netspec check speed, in-process (best of 5, 3 from 1,000 layers, 1 at 10,000; seconds)")
    print(f"{'spec':>15} {'layers':>7} {'parse':>8} {'+elaborate':>11} {'analyze':>8} {'us/layer':>9}")
    with limits.raised(file_size=64 * 2**20, layers=4 * max(sizes), iterations=4 * max(sizes)):
        for n in sizes:
            repeats = 5 if n < 1000 else 3 if n < 10000 else 1
            for kind, make in (("flat", flat_spec), ("repeated block", repeated_spec)):
                text = make(n)
                parse_t = best_of(lambda: parse(text, f"<{kind}>"), repeats)
                check_t = best_of(lambda: elaborate(text, file=f"<{kind}>"), repeats)
                full_t = best_of(lambda: analyze(text), repeats)
                print(f"{kind:>15} {n:>7,} {parse_t:>8.3f} {check_t:>11.3f} {full_t:>8.3f} "
                      f"{1e6 * full_t / n:>9.0f}")


def _process(cmd, repeats: int) -> float:
    def run():
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return best_of(run, repeats)


def processes(repeats: int = 5) -> None:
    py = sys.executable
    netspec = [py, "-m", "netspec", "check"]
    base = _process([py, "-c", "import torch"], repeats)
    print(f"\nwhole processes (best of {repeats}, seconds)")
    print(f"{'command':>75} {'time':>6} {'x torch':>8} {'beyond':>7}")
    bare = 'python -c "import torch"'
    print(f"{bare:>75} {base:>6.2f} {1:>8.2f} {0:>7.2f}")
    for args in (["stdlib/gpt2.nn"], ["stdlib/gpt2.nn", "--set", "n_layer=1000", "--limit", "layers=100000"]):
        t = _process(netspec + args, repeats)
        label = " ".join(["netspec check", *args])
        print(f"{label:>75} {t:>6.2f} {t / base:>8.2f} {t - base:>7.2f}")


def main(argv) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000, 10000], metavar="N",
                   help="layers per generated spec (default: 10 100 1000 10000)")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="runs per process timing (best of N)")
    args = p.parse_args(argv)
    stages(args.sizes)
    processes(args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
