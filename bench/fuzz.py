"""Fuzzing netspec: thousands of mutated specs and every resource bomb, counted by outcome.

Each case is a shipped spec (stdlib/, specs/) with 1-3 grammar-aware mutations
(tests/hostile/mutations.py), checked as `netspec check --all` checks (and formatted as
`netspec fmt` does; every 5th case that checks is also ejected, compiled and drawn as DOT)
by tests/hostile/oracle.py, in worker processes under an address-space limit:

    ok / error   success, or netspec's own errors each at FILE:LINE:COL   (what must happen)
    unlocated    an error without a location
    internal     any other exception (a traceback would reach the user)
    hang         over the time budget per case (--budget, default 10 s)
    memory       MemoryError under the worker's address-space limit (--memory-mb)
    killed       the worker died on the case (the kernel's OOM killer, a crash)

Then each bomb of tests/hostile/bombs.py runs through the real CLI (`netspec check`) in its
own process under a 500 MB address-space limit, timed against a small valid spec checked
the same way in the same run (the baseline: what starting netspec costs on this machine).

    .venv/bin/python bench/fuzz.py                       # 10,000 cases and the bombs (minutes)
    .venv/bin/python bench/fuzz.py --cases 500 --no-bombs
    .venv/bin/python bench/fuzz.py --replay 123          # one case: its text and its outcome
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLASSES = ("ok", "error", "unlocated", "internal", "hang", "memory", "killed")
SPECS = sorted(list((ROOT / "stdlib").glob("*.nn")) + list((ROOT / "specs").glob("*.nn")))


def case_text(case: int) -> tuple[str, str]:
    """(the spec it mutates, the mutated text) of case number `case`: the same on every run."""
    from tests.hostile.mutations import mutate

    r = random.Random(case)
    spec = SPECS[r.randrange(len(SPECS))]
    return spec.name, mutate(spec.read_text(encoding="utf-8"), r, count=r.randrange(1, 4))


def _limit_memory(mb: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (mb * 2**20, mb * 2**20))
    return apply


def run_cases(cases: int, seed: int, workers: int, budget: float, memory_mb: int, deep_every: int) -> list[dict]:
    """Every case's result. A worker that dies is restarted after the case it died on; one
    stuck past the budget where no signal reaches (a long C call) is killed: a hang."""
    import selectors

    todo = list(range(seed, seed + cases))
    results: dict[int, dict] = {}
    sel = selectors.DefaultSelector()
    running: dict[int, list] = {}  # pid -> [process, its cases, the case under way, when it started]

    def start(cases_left: list[int]):
        if not cases_left:
            return
        p = subprocess.Popen([sys.executable, __file__, "--worker-cases", json.dumps(cases_left), "--budget",
                              str(budget), "--deep-every", str(deep_every)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, preexec_fn=_limit_memory(memory_mb), text=True)
        running[p.pid] = [p, cases_left, None, time.perf_counter()]
        sel.register(p.stdout, selectors.EVENT_READ, p.pid)

    def finish(pid: int, kind: str, detail: str):
        p, cases_left, current, since = running.pop(pid)
        sel.unregister(p.stdout)
        if p.poll() is None:
            p.kill()
        p.wait()
        left = [c for c in cases_left if c not in results]
        if left:  # it stopped on left[0]
            results[left[0]] = {"case": left[0], "spec": case_text(left[0])[0], "kind": kind,
                                "seconds": round(time.perf_counter() - since, 3),
                                "detail": detail or f"worker exit status {p.returncode}"}
            start(left[1:])

    for i in range(workers):
        start(todo[i::workers])  # interleaved: each worker a fair mix of the specs
    t0, done = time.perf_counter(), 0
    while running:
        for key, _ in sel.select(timeout=1.0):
            pid = key.data
            p, cases_left, current, since = running[pid]
            line = p.stdout.readline()
            if not line:
                finish(pid, "killed", "")
                continue
            msg = json.loads(line)
            if "start" in msg:
                running[pid][2:] = [msg["start"], time.perf_counter()]
                continue
            results[msg["case"]] = msg
            done += 1
            if done % 500 == 0:
                print(f"  {done:,}/{cases:,} cases ({done / (time.perf_counter() - t0):.1f}/s)", file=sys.stderr,
                      flush=True)
        for pid, (p, cases_left, current, since) in list(running.items()):
            if current is not None and current not in results and time.perf_counter() - since > budget + 20:
                finish(pid, "hang", f"stuck over {budget + 20:g} s (killed)")
    return [results[c] for c in sorted(results)]


# ---- the bombs, through the CLI ----
def _peak_rss_mb(path: Path, memory_mb: int) -> tuple[dict, float]:
    """`netspec check PATH` in its own process under an address-space limit: its result,
    and its own peak resident memory in MB (the rusage of that one child)."""
    netspec = [sys.executable, "-m", "netspec", "check", str(path)]
    start = time.perf_counter()
    p = subprocess.Popen(netspec, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=path.parent,
                         preexec_fn=_limit_memory(memory_mb))
    out, err = b"", b""
    deadline = start + 30
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    sel.register(p.stderr, selectors.EVENT_READ)
    open_ = 2
    while open_ and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=0.5):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_ -= 1
            elif key.fileobj is p.stdout:
                out += chunk
            else:
                err += chunk
    if open_:
        p.kill()
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    first = (err or out).decode("utf-8", "replace").splitlines()[:1]
    return {"rc": rc, "seconds": seconds, "first": first[0] if first else "", "timed_out": bool(open_)}, \
        usage.ru_maxrss / 1024


def run_bombs(names: list[str]) -> list[dict]:
    import re

    from tests.hostile.bombs import BOMBS, HEAD, TAIL, write_bomb

    rows = []
    with tempfile.TemporaryDirectory(prefix="netspec-bombs-") as tmp:
        base = Path(tmp) / "baseline.nn"
        base.write_text(HEAD + "    Linear(4, 4)\n" + TAIL)
        runs = [_peak_rss_mb(base, 4096) for _ in range(3)]
        baseline = min(r[0]["seconds"] for r in runs)
        rows.append({"name": "(baseline: a valid 1-layer spec)", "seconds": baseline, "rss": runs[0][1],
                     "located": runs[0][0]["rc"] == 0, "first": runs[0][0]["first"]})
        for name in names or list(BOMBS):
            path = write_bomb(name, Path(tmp))
            res, rss = _peak_rss_mb(path, 500)
            located = res["rc"] == 1 and bool(re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", res["first"]))
            rows.append({"name": name, "seconds": res["seconds"], "rss": rss, "located": located,
                         "first": res["first"], "ratio": res["seconds"] / baseline})
            path.unlink()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0, help="the first case number (cases are seed .. seed+cases-1)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--budget", type=float, default=10.0, help="seconds per case before it counts as a hang")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of each worker")
    p.add_argument("--deep-every", type=int, default=5, help="eject and draw every Nth case that checks")
    p.add_argument("--no-bombs", action="store_true")
    p.add_argument("--bombs-only", action="store_true")
    p.add_argument("--bomb", action="append", default=[], help="run only this bomb (repeatable)")
    p.add_argument("--replay", type=int, help="print one case's text and run it here")
    p.add_argument("--json", metavar="FILE", help="also write every result as JSON")
    p.add_argument("--worker-cases", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker_cases:
        from tests.hostile.oracle import run_case
        os.chdir(tempfile.mkdtemp(prefix="netspec-fuzz-"))
        run_case(SPECS[0].read_text(encoding="utf-8"), deep=True, budget=0)  # imports torch: not a case's time
        for case in json.loads(args.worker_cases):
            print(json.dumps({"start": case}), flush=True)
            spec, text = case_text(case)
            out = run_case(text, deep=args.deep_every > 0 and case % args.deep_every == 0, budget=args.budget)
            print(json.dumps({"case": case, "spec": spec, "kind": out.kind, "seconds": round(out.seconds, 3),
                              "detail": out.detail[-600:]}), flush=True)
        return 0
    if args.replay is not None:
        from tests.hostile.oracle import run_case
        spec, text = case_text(args.replay)
        print(f"# case {args.replay}: a mutation of {spec}\n{text}")
        out = run_case(text, deep=True, budget=args.budget)
        print(f"# {out.kind} in {out.seconds:.2f} s\n{out.detail}")
        return 0

    report: dict = {}
    failed = False
    if not args.bombs_only:
        print(f"fuzz: {args.cases:,} cases from {len(SPECS)} shipped specs, seed {args.seed}, {args.workers} workers, "
              f"{args.budget:g} s and {args.memory_mb:,} MB per case", flush=True)
        t0 = time.perf_counter()
        results = run_cases(args.cases, args.seed, args.workers, args.budget, args.memory_mb, args.deep_every)
        wall = time.perf_counter() - t0
        counts = Counter(r["kind"] for r in results)
        slow = sorted(results, key=lambda r: -r["seconds"])[:5]
        print(f"\n{'outcome':<10} {'cases':>7}")
        for k in CLASSES:
            print(f"{k:<10} {counts.get(k, 0):>7,}")
        print(f"{'total':<10} {len(results):>7,}   in {wall:,.0f} s "
              f"(median {sorted(r['seconds'] for r in results)[len(results) // 2]:.2f} s a case, "
              f"slowest {slow[0]['seconds']:.1f} s: case {slow[0]['case']})")
        bad = [r for r in results if r["kind"] not in ("ok", "error")]
        for r in bad[:20]:
            print(f"\ncase {r['case']} ({r['spec']}): {r['kind']}\n  " + r["detail"].replace("\n", "\n  "))
        failed |= bool(bad)
        report["fuzz"] = {"counts": dict(counts), "seconds": wall, "bad": bad}
    if not args.no_bombs:
        rows = run_bombs(args.bomb)
        head = f"{'bomb (netspec check, 500 MB address space)':<44} {'seconds':>8} {'× base':>7} {'peak MB':>8}"
        print(f"\n{head}  result")
        for r in rows:
            verdict = "ok" if r["name"].startswith("(") else \
                "located error" if r["located"] else "NOT LOCATED"
            ratio = f"{r['ratio']:.1f}" if "ratio" in r else "1.0"
            print(f"{r['name']:<44} {r['seconds']:>8.2f} {ratio:>7} {r['rss']:>8.0f}  {verdict}")
        over = [r for r in rows[1:] if not r["located"] or r["seconds"] > 2.0 or r["rss"] > 500]
        print(f"\n{len(rows) - 1} bombs: {sum(r['located'] for r in rows[1:])} located errors; "
              f"{sum(r['seconds'] <= 2.0 for r in rows[1:])} under 2 s; {sum(r['rss'] <= 500 for r in rows[1:])} "
              f"under 500 MB (baseline {rows[0]['seconds']:.2f} s, {rows[0]['rss']:.0f} MB)")
        for r in over:
            print(f"  {r['name']}: {r['seconds']:.2f} s, {r['rss']:.0f} MB: {r['first'][:160]}")
        failed |= any(not r["located"] for r in rows[1:])
        report["bombs"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
