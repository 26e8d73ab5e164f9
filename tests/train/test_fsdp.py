"""strategy fsdp: FSDP2 sharding under torchrun -- two gloo processes on CPU (torch supports
fully_shard there) train to the same weights as one process, and their run folder holds full
weights and a resumable optimizer state in the format of any other run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from netspec import build
from netspec.train.config import ConfigError, RunConfig
from netspec.train.fsdp import shard_plan
from netspec.train.trainer import TrainError, train
from tests.train.fixtures import make

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import os, sys, torch
sys.path.insert(0, {repo!r})
from netspec.train.config import ConfigError, RunConfig
from netspec.train.trainer import train
from tests.train.fixtures import make

out = sys.argv[1]
cfg = RunConfig(steps=6, batch_size=8, eval_every=3, save_every=0, log_every=1, warmup_steps=1, device="cpu",
                lr=3e-3, strategy="fsdp")
main = os.environ["RANK"] == "0"
r = train(make("mlp"), cfg, "digits", out, stop_after=3, progress=main, live=False)
assert r.interrupted and r.step == 3
r = train(make("mlp", seed=5), cfg, "digits", out, resume=True, progress=main, live=False)  # weights from last/
print("rank", os.environ["RANK"], "steps", r.step, "val", r.val["accuracy"])
"""


def test_shard_plan_wraps_each_block_instance_then_the_root():
    gpt = build("gpt2", n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64)
    assert shard_plan(gpt) == ["transformer.h.0", "transformer.h.1", ""]
    assert shard_plan(make("mlp")) == [""]  # no block instances: the root holds everything


def test_fsdp_needs_torchrun():
    with pytest.raises(TrainError, match=r"^strategy fsdp shards the model across the processes of torchrun; "):
        train(make("mlp"), RunConfig(steps=1, strategy="fsdp", device="cpu"), "digits", None, progress=False)
    with pytest.raises(ConfigError, match=r"^strategy fsdp cannot go with log: tensorboard \(it runs the model on "
                                          r"rank 0 alone, which a sharded model cannot do\); drop the log or use "
                                          r"strategy ddp$"):
        RunConfig(strategy="fsdp", log=["tensorboard"])


def test_two_gloo_ranks_with_fsdp_match_one_process_and_resume(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.format(repo=str(REPO))))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "run")]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("steps 6 val") == 2
    run = tmp_path / "run"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 7  # header + one row per step, written once across the stop and the resume
    # 2 ranks x 8 == 1 process x 16 on the same samples
    single = make("mlp")
    cfg = RunConfig(steps=6, batch_size=16, eval_every=3, save_every=0, log_every=1, warmup_steps=1,
                    device="cpu", lr=3e-3)
    losses = []
    train(single, cfg, "digits", None, progress=False, on_step=lambda s, row: losses.append(row["loss"]))
    saved = load_file(str(run / "last" / "model.safetensors"))
    assert saved.keys() == dict(single.named_parameters()).keys()
    for k, v in single.named_parameters():
        assert not (v - make("mlp").state_dict()[k]).abs().max() < 1e-6, k  # it trained
        assert (saved[k] - v.detach()).abs().max() < 1e-5, k
    logged = [float(r.split(",")[1]) for r in rows[1:]]
    assert max(abs(a - b) for a, b in zip(logged, losses)) < 1e-5
