"""Multi-process training: two gloo processes on CPU launched with torchrun.

After a few DDP steps both ranks must hold identical parameters, only rank 0
writes the run folder, and -- since the two ranks' shards of a batch are
exactly the samples one process would take with twice the batch -- the
result matches single-process training up to float summation order.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from netspec.train.config import RunConfig
from netspec.train.trainer import train
from tests.train.fixtures import make

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import os, sys, torch
sys.path.insert(0, {repo!r})
from netspec.train.config import RunConfig
from netspec.train.trainer import train
from tests.train.fixtures import make

kind, out = sys.argv[1], sys.argv[2]
m = make(kind)
cfg = RunConfig(steps=5, batch_size=8, eval_every=5, save_every=0, log_every=1, warmup_steps=1,
                device="cpu", lr=3e-3)
r = train(m, cfg, "digits", out, progress=os.environ["RANK"] == "0", live=False)
torch.save({{k: v for k, v in m.named_parameters()}}, os.path.join(out, "..", f"{{kind}}-rank{{os.environ['RANK']}}.pt"))
print("rank", os.environ["RANK"], "steps", r.step, "world ok")
"""


def torchrun(tmp_path: Path, kind: str) -> subprocess.CompletedProcess:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.format(repo=str(REPO))))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), kind, str(tmp_path / kind)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def test_two_gloo_ranks_stay_identical_and_match_one_process(tmp_path):
    p = torchrun(tmp_path, "mlp")
    assert p.returncode == 0, p.stdout + p.stderr
    r0 = torch.load(tmp_path / "mlp-rank0.pt")
    r1 = torch.load(tmp_path / "mlp-rank1.pt")
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k  # DDP keeps the ranks bit-identical
    init = dict(make("mlp").named_parameters())
    assert any(not torch.equal(r0[k], init[k]) for k in r0)  # and they did train
    # only rank 0 logs and writes the run folder
    run = tmp_path / "mlp"
    assert (run / "last" / "model.safetensors").is_file() and (run / "metrics.csv").is_file()
    assert p.stdout.count("done: MLP 5/5 steps") == 1
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 6  # header + one row per step, written once
    # 2 ranks x 8 == 1 process x 16 on the same samples
    single = make("mlp")
    cfg = RunConfig(steps=5, batch_size=16, eval_every=5, save_every=0, log_every=1, warmup_steps=1,
                    device="cpu", lr=3e-3)
    train(single, cfg, "digits", None, progress=False)
    for k, v in single.named_parameters():
        assert torch.allclose(v, r0[k], atol=1e-5), k
