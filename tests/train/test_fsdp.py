"""strategy fsdp: FSDP2 sharding under torchrun -- two gloo processes on CPU (torch supports
fully_shard there) train a GPT-2 (block instances sharded one by one, tied embedding and
head in the root, a padded vocabulary) to the same losses and weights as one process, through
a stop and a resume, and their run folder holds full weights like any other run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_model

from netspec import build
from netspec.train.config import ConfigError, RunConfig
from netspec.train.fsdp import shard_plan
from netspec.train.trainer import TrainError, train
from tests.train.fixtures import make

REPO = Path(__file__).resolve().parents[2]
SIZES = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "vocab_size": 64}
TEXT = "def f(x):\n    return x + 1\n" * 300

WORKER = """
import os, sys, torch
import torch.distributed as dist
sys.path.insert(0, {repo!r})
from netspec import build
from netspec.train.config import RunConfig
from netspec.train.trainer import train

out, text = sys.argv[1], sys.argv[2]
dist.init_process_group("gloo")  # held across both train() calls: each joins it, none tears it down
torch.manual_seed(0)
cfg = RunConfig(**{cfg!r}, batch_size=4, strategy="fsdp", data="text:" + text)
main = dist.get_rank() == 0
r = train(build("gpt2", **{sizes!r}), cfg, cfg.data, out, stop_after=2, progress=main, live=False)
assert r.interrupted and r.step == 2
torch.manual_seed(5)  # other initial weights: the resume must load last/
r = train(build("gpt2", **{sizes!r}), cfg, cfg.data, out, resume=True, progress=main, live=False)
# a file per rank, not stdout: rank 0's progress lines share the pipe and can split a print
with open(os.path.join(os.path.dirname(out), f"rank{{dist.get_rank()}}.txt"), "w") as f:
    f.write(f"{{r.step}} {{r.val['perplexity']!r}}")
dist.destroy_process_group()
"""
CFG = {"steps": 4, "eval_every": 2, "eval_batches": 0, "save_every": 0, "log_every": 1, "warmup_steps": 1,
       "device": "cpu", "lr": 3e-3, "vocab": "char", "vocab_limit": 20}


def test_shard_plan_wraps_each_block_instance_then_the_root():
    assert shard_plan(build("gpt2", **SIZES)) == ["transformer.h.0", "transformer.h.1", ""]
    assert shard_plan(make("mlp")) == [""]  # no block instances: the root holds everything


def test_fsdp_needs_torchrun_and_no_rank0_only_logs():
    with pytest.raises(TrainError, match=r"^strategy fsdp shards the model across the processes of torchrun; "):
        train(make("mlp"), RunConfig(steps=1, strategy="fsdp", device="cpu"), "digits", None, progress=False)
    with pytest.raises(ConfigError, match=r"^strategy fsdp cannot go with log: tensorboard \(it runs the model on "
                                          r"rank 0 alone, which a sharded model cannot do\); drop the log or use "
                                          r"strategy ddp$"):
        RunConfig(strategy="fsdp", log=["tensorboard"])


def test_two_gloo_ranks_with_fsdp_match_one_process_and_resume(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.format(repo=str(REPO), cfg=CFG, sizes=SIZES)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "run"), str(text)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    run = tmp_path / "run"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 5  # header + one row per step, written once across the stop and the resume
    # 2 ranks x 4 == 1 process x 8 on the same samples
    torch.manual_seed(0)
    single = build("gpt2", **SIZES)
    init = {k: v.clone() for k, v in single.state_dict().items()}
    cfg = RunConfig(**CFG, batch_size=8)
    losses = []
    r = train(single, cfg, f"text:{text}", None, progress=False, on_step=lambda s, row: losses.append(row["loss"]))
    logged = [float(row.split(",")[2]) for row in rows[1:]]
    assert max(abs(a - b) for a, b in zip(logged, losses)) < 1e-5
    ends = [(tmp_path / f"rank{i}.txt").read_text().split() for i in range(2)]
    assert [int(step) for step, _ in ends] == [4, 4]
    ppl = [float(v) for _, v in ends]
    torch.testing.assert_close(ppl, [r.val["perplexity"]] * 2, rtol=1e-5, atol=0)  # every rank's validation
    saved = load_file(str(run / "last" / "model.safetensors"))
    full = single.state_dict()
    save_model(single, str(tmp_path / "one.safetensors"))
    assert saved.keys() == load_file(str(tmp_path / "one.safetensors")).keys()  # the tie stored once, as always
    for k, v in saved.items():
        assert not torch.equal(v, init[k]) or "bias" in k or "ln" in k, k  # it trained
        torch.testing.assert_close(v, full[k], rtol=1e-4, atol=1e-5, msg=k)
