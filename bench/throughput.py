"""Benchmark: training throughput of a built spec — eager vs torch.compile, fp32 vs bf16.

On a GPU this is the check of issue 5's recipe (`--device cuda --compile --precision bf16`);
on a CPU it runs a small configuration so the script itself stays tested by use.
Prints a table of tokens (or samples) per second and peak memory for each variant.

    .venv/bin/python bench/throughput.py                       # GPT-2 small on cuda, tiny on cpu
    .venv/bin/python bench/throughput.py --device cpu --steps 5
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import netspec  # noqa: E402
from netspec.train.precision import autocast  # noqa: E402


def run(device: torch.device, compile_: bool, precision: str, params: dict, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = netspec.build(REPO / "stdlib" / "gpt2.nn", device=device, **params).train()
    T = params["block_size"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    step_model = torch.compile(model) if compile_ else model
    idx = torch.randint(0, params["vocab_size"], (batch, T), device=device)

    def step():
        with autocast(device, precision):
            logits = step_model(idx)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), idx[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"tokens/s": batch * T * steps / dt, "step ms": 1000 * dt / steps, "peak GiB": peak}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        params = dict(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0)
        batch = 8
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        params = dict(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0)
        batch = 8
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"GPT2 training throughput on {device} ({params['n_layer']} layers, T={params['block_size']}, "
                    f"batch {batch})")
    for col in ("variant", "tokens/s", "step ms", "peak GiB"):
        t.add_column(col, justify="right")
    for compile_, precision in ((False, "fp32"), (False, "bf16"), (True, "fp32"), (True, "bf16")):
        r = run(device, compile_, precision, params, batch, args.steps)
        name = ("compile" if compile_ else "eager") + f" {precision}"
        t.add_row(name, f"{r['tokens/s']:,.0f}", f"{r['step ms']:.1f}", f"{r['peak GiB']:.2f}")
    Console().print(t)


if __name__ == "__main__":
    main()
