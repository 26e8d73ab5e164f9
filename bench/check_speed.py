"""Benchmark: how fast a large spec is parsed, elaborated and checked.

Generates specs with N layers (a deep MLP written out line by line, and the same
depth as a repeated block) and times each front-end stage, then the full
`analyze` (lowering on the meta device + shape inference). Prints a table.
Target (issue 2): a 1,000-layer spec checks in well under a second.

    .venv/bin/python bench/check_speed.py [N ...]
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.table import Table


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


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(sizes):
    from netspec.dsl.frontend import elaborate
    from netspec.dsl.parser import parse
    import netspec  # noqa: F401  (torch import kept out of the timings)
    from netspec.compiler.builder import analyze

    t = Table(title="netspec check speed (best of 5, seconds)")
    for col in ("spec", "layers", "parse", "parse+elaborate+checks", "analyze (meta lowering + shapes)"):
        t.add_column(col, justify="right")
    for n in sizes:
        for kind, make in (("flat", flat_spec), ("repeated block", repeated_spec)):
            text = make(n)
            parse_t = best_of(lambda: parse(text, f"<{kind}>"))
            check_t = best_of(lambda: elaborate(text, file=f"<{kind}>"))
            full_t = best_of(lambda: analyze(text), repeats=3)
            t.add_row(kind, str(n), f"{parse_t:.3f}", f"{check_t:.3f}", f"{full_t:.3f}")
    Console().print(t)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
