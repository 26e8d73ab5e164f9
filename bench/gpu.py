"""Benchmark: training steps of netspec's built models against the same networks written in
plain PyTorch, eager and compiled. Prints a table; asserts nothing (see docs/OPTIMIZER.md).

Workloads (GPU sizes; a CPU runs small ones, marked in the table):
  GPT-2 124M  B=16, T=1024      netspec stdlib/gpt2.nn | plain: bench/plain_gpt2.py (nanoGPT's
                                fast path) | transformers.GPT2LMHeadModel (sdpa attention)
  GPT-2 XL    B=4, T=1024       netspec | plain                                     (GPU only)
  ResNet-50   B=128, 224x224    netspec stdlib/resnet.nn | plain: tests/reference/resnet.py
                                (torchvision's structure, hand-written) | torchvision
All GPT-2 sides use one config (vocab padded to 50304 on GPU, as nanoGPT does). One step:
forward, cross-entropy, backward, AdamW (fused on CUDA); bf16 autocast and, for the
convnets, channels_last on CUDA; the same code for every side.

On a GPU each workload runs in a process of its own per mode (a fresh CUDA context), its
sides one after another, each isolated from the last (tensors freed, cached blocks
returned, compiled code dropped, the memory peak reset), so each peak is its own. The
eager groups run first, then the compiled ones while the time budget lasts (--budget,
default 300 s; a group still running 30 s past it is stopped, so the whole run stays under
6 minutes); what it cannot fit is listed as skipped. On a CPU everything runs in this
process and the sides of a workload alternate step by step (ABBA: none always goes first),
so load from other processes falls on them alike. Throughput and step time come from each
side's fastest step (the one other processes disturbed least: on a shared 2-core machine a
step takes from 1x to 20x its quiet time); the ratio to plain from the median process CPU
time per step, which waiting for a core does not inflate (--threads 1 makes it steadier).

Columns: throughput (tokens or images per second), step time, peak memory (CUDA) or the
median CPU time of a step (CPU), MFU (model FLOPs per second over the card's dense bf16
peak; GPT-2 by nanoGPT's 6N + 12 L H Q T per token, convnets 6 x forward MACs), and the
ratio to the plain side (above 1: faster than plain).

    .venv/bin/python bench/gpu.py                      # everything this machine runs
    .venv/bin/python bench/gpu.py --rows gpt2 --steps 20 --compile
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.workloads import WORKLOADS, Built, Skip, Workload, builder, make_step  # noqa: E402

# Dense bf16 peaks (FLOP/s), matched against torch.cuda.get_device_name(); first match wins.
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
             ("GH200", 989e12), ("A100", 312e12))


@dataclass
class Result:
    workload: str
    side: str
    compiled: bool
    items_per_s: float = float("nan")
    step_ms: float = float("nan")
    peak_gib: float = float("nan")
    mfu: float = float("nan")
    loss: float = float("nan")
    cpu_ms: float = float("nan")  # CPU: median process CPU time of a step
    note: str = ""


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def _finish(res: Result, built: Built, seconds_per_step: float, device):
    res.step_ms = 1000 * seconds_per_step
    res.items_per_s = built.items / seconds_per_step
    peak = peak_flops(device)
    if peak:
        res.mfu = built.flops / seconds_per_step / peak
    return res


def _config(workload: Workload, device: torch.device) -> dict:
    return workload.cuda if device.type == "cuda" else workload.cpu


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(workload: Workload, side: str, compiled: bool, device: torch.device, steps: int, warmup: int) -> Result:
    """One variant, timed over `steps` steps. Called after _isolate(): its memory peak is its own."""
    res = Result(workload.key, side, compiled)
    torch.manual_seed(0)
    built = builder(workload, side)(_config(workload, device), device)
    step = make_step(built, device, compiled)
    for _ in range(warmup):  # and compilation
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    res.loss = loss.item()
    _sync(device)
    dt = (time.perf_counter() - t) / steps
    if device.type == "cuda":
        res.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    return _finish(res, built, dt, device)


def _isolate(device: torch.device) -> None:
    """Forget the previous variant: its tensors, cached blocks, compiled code and peak."""
    gc.collect()
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        left = torch.cuda.memory_allocated(device)
        if left > 2**20:
            print(f"warning: {left / 2**20:.0f} MiB still allocated before the next variant", file=sys.stderr)


def run_alternating(workload: Workload, compiled: bool, device: torch.device, steps: int, warmup: int) -> list[Result]:
    """All sides of one workload in this process (a CPU), step by step in turn."""
    cfg = workload.cpu
    built, results = {}, {}
    for side in workload.sides:
        torch.manual_seed(0)
        try:
            built[side] = builder(workload, side)(cfg, device)
        except Skip as e:
            results[side] = Result(workload.key, side, compiled, note=str(e))
    if "netspec" in built and "plain" in built:  # the same weights: the first losses must agree
        built["plain"].model.load_state_dict(built["netspec"].model.state_dict())
    stepper = {side: make_step(b, device, compiled) for side, b in built.items()}
    first = {side: step().item() for side, step in stepper.items()}
    if "plain" in first and "netspec" in first and abs(first["plain"] - first["netspec"]) > 1e-4 * abs(first["plain"]):
        raise AssertionError(f"{workload.title}: netspec and plain disagree on the first loss: {first}")
    for _ in range(warmup - 1):
        for step in stepper.values():
            step()
    wall, cpu = {side: [] for side in stepper}, {side: [] for side in stepper}
    order = list(stepper)
    for r in range(steps):
        for side in (order if r % 2 == 0 else order[::-1]):  # ABBA: neither side always goes first
            t, c = time.perf_counter(), time.process_time()
            stepper[side]().item()
            wall[side].append(time.perf_counter() - t)
            cpu[side].append(time.process_time() - c)
    for side, b in built.items():
        # throughput from the fastest step: on a shared machine, the one other processes disturbed
        # least; the ratio from the median CPU time, which waiting for a core does not inflate
        res = _finish(Result(workload.key, side, compiled, loss=first[side]), b, min(wall[side]), device)
        res.cpu_ms = 1000 * statistics.median(cpu[side])
        results[side] = res
    return [results[s] for s in workload.sides]


# ---- orchestration ----
def _group(args) -> int:
    """Child process: the sides of one workload in one mode, one after the other, each
    isolated from the last; sides that cannot start before the deadline are skipped."""
    spec = json.loads(args.group)
    workload = next(w for w in WORKLOADS if w.key == spec["workload"])
    device, compiled = torch.device(spec["device"]), spec["compiled"]
    for side in spec["sides"]:
        if time.time() > spec["deadline"] - (90 if compiled else 20):
            res = Result(workload.key, side, compiled, note="skipped: the time budget is spent")
        else:
            _isolate(device)
            try:
                res = run_one(workload, side, compiled, device, args.steps, args.warmup)
            except Skip as e:
                res = Result(workload.key, side, compiled, note=str(e))
            except torch.OutOfMemoryError:
                res = Result(workload.key, side, compiled, note="out of memory")
            except Exception as e:  # noqa: BLE001 - one side failing must not lose the others' rows
                res = Result(workload.key, side, compiled, note=f"failed: {type(e).__name__}: {e}"[:200])
        print("RESULT " + json.dumps(asdict(res)), flush=True)
    return 0


def run_processes(workloads, args, device: torch.device) -> tuple[list[Result], list[str]]:
    """A process per workload and mode (a fresh CUDA context); eager groups first, then the
    compiled ones in the order the budget should reach them. (--processes runs this on a
    CPU too, to try the orchestration.)"""
    workloads = [w for w in workloads if _config(w, device) is not None]
    groups = [(w, False, w.sides) for w in workloads]
    if args.compile is not False:
        rank = {"gpt2": 0, "resnet": 1, "gpt2-xl": 2}
        for w in sorted(workloads, key=lambda w: rank.get(w.key, 9)):
            groups.append((w, True, tuple(s for s in w.sides if s != "transformers")))
        groups += [(w, True, ("transformers",)) for w in workloads if "transformers" in w.sides]
    results, notes, start = [], [], time.time()
    deadline = start + args.budget
    for w, compiled, sides in groups:
        label = f"{w.title} {'compiled' if compiled else 'eager'}"
        left = deadline - time.time()
        if left < (90 if compiled else 20):
            notes.append(f"skipped {label} ({', '.join(sides)}): the {args.budget:.0f} s budget is spent")
            continue
        spec = json.dumps({"workload": w.key, "compiled": compiled, "sides": list(sides), "deadline": deadline,
                           "device": device.type})
        cmd = [sys.executable, __file__, "--group", spec, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=left + 30, cwd=REPO)
            stdout, err = out.stdout, out.stderr
        except subprocess.TimeoutExpired as e:
            stdout, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
            notes.append(f"stopped {label}: past the time budget")
        got = [Result(**json.loads(x[7:])) for x in stdout.splitlines() if x.startswith("RESULT ")]
        if not got and err != "timeout":
            notes.append(f"failed {label}: {(err.strip().splitlines() or ['no output'])[-1]}")
        results += got
        print(f"  done {label} ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    return results, notes


def run_cpu(workloads, args) -> tuple[list[Result], list[str]]:
    device = torch.device("cpu")
    results, notes = [], []
    for w in workloads:
        if w.cpu is None:
            notes.append(f"{w.title}: on a GPU only")
            continue
        for compiled in ((False, True) if args.compile else (False,)):
            results += run_alternating(w, compiled, device, args.steps, args.warmup)
    if not args.compile:
        notes.append("compiled variants: pass --compile (torch.compile takes minutes on a small CPU)")
    return results, notes


def _fmt(v, spec) -> str:
    return "-" if v != v else format(v, spec)  # NaN -> "-"


def print_table(results: list[Result], notes: list[str], device: torch.device, workloads) -> None:
    """One block per workload: a title line with its size, then a row per side and mode."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ntraining step ({where}; torch {torch.__version__})")
    by = {(r.workload, r.side, r.compiled): r for r in results}
    cpu = device.type == "cpu"
    extra = "CPU ms" if cpu else "peak GiB"
    head = f"  {'side':<14}{'mode':<10}{'items/s':>14}{'step ms':>10}{extra:>10}{'MFU':>8}{'vs plain':>10}"
    for w in workloads:
        cfg = w.cuda if device.type == "cuda" else w.cpu
        if cfg is None or not any(k[0] == w.key for k in by):
            continue
        size = (f"B={cfg['batch']} T={cfg['block_size']} L={cfg['n_layer']} d={cfg['n_embd']} V={cfg['vocab_size']}"
                if w.unit == "tok" else f"{cfg['model']}, B={cfg['batch']}, {cfg['size']}x{cfg['size']}")
        print(f"\n{w.title if device.type == 'cuda' else w.cpu_title} ({size})\n{head}")
        for compiled in (False, True):
            plain = by.get((w.key, "plain", compiled))
            for side in w.sides:
                r = by.get((w.key, side, compiled))
                if r is None:
                    continue
                mode = "compiled" if compiled else "eager"
                if r.note:
                    print(f"  {side:<14}{mode:<10}  skipped: {r.note}")
                    continue
                if plain is None or plain.note:
                    ratio = float("nan")
                elif r.cpu_ms == r.cpu_ms and plain.cpu_ms == plain.cpu_ms:
                    ratio = plain.cpu_ms / r.cpu_ms  # the median CPU time per step: robust to load
                else:
                    ratio = r.items_per_s / plain.items_per_s
                mfu = _fmt(100 * r.mfu, ".1f") + ("%" if r.mfu == r.mfu else "")
                third = _fmt(r.cpu_ms, ".1f") if cpu else _fmt(r.peak_gib, ".2f")
                print(f"  {side:<14}{mode:<10}{_fmt(r.items_per_s, ',.0f') + ' ' + w.unit + '/s':>14}"
                      f"{_fmt(r.step_ms, '.1f'):>10}{third:>10}{mfu:>8}{_fmt(ratio, '.3f'):>10}")
    for n in notes:
        print(f"note: {n}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="+", choices=[w.key for w in WORKLOADS], help="workloads to run (default: all)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 on a GPU, 15 on a CPU)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens there)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also the torch.compile variants (default: on a GPU yes, on a CPU no)")
    p.add_argument("--budget", type=float, default=300.0,
                   help="GPU: seconds for the whole run (a group still running 30 s past it is stopped)")
    p.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's choice)")
    p.add_argument("--processes", action="store_true", help="on a CPU too, a process per workload and mode "
                   "(as on a GPU) instead of alternating the sides in this one")
    p.add_argument("--group", help=argparse.SUPPRESS)  # internal: run one workload's sides, print results
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    args.steps = args.steps or (10 if cuda else 15)
    if args.group:
        return _group(args)
    workloads = [w for w in WORKLOADS if not args.rows or w.key in args.rows]
    device = torch.device("cuda" if cuda else "cpu")
    if cuda or args.processes:
        results, notes = run_processes(workloads, args, device)
    else:
        results, notes = run_cpu(workloads, args)
    print_table(results, notes, device, workloads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
