"""No kill loses a step: a checkpoint is one unit (last/ with a manifest naming matching files),
a SIGKILL at any point of the save sequence resumes to the same weights and metrics.csv as a
run never killed, and a damaged or mismatched checkpoint is refused with its reason, falling
back to the last complete one."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from netspec.cli import main as netspec_main
from netspec.train import checkpoint as ckpt
from netspec.train.faults import ENV, STAGES
from netspec.train.trainer import train
from tests.train.fixtures import make
from tests.train.test_trainer import quiet, state_equal

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
model Drop():
    input x: float[B=2, 64]
    fc1: Linear(64, 32)
    ReLU()
    Dropout(0.2)
    fc2: Linear(32, 10)
    head logits: classify
"""
# 12 steps; checkpoints (and evals) every 4: the kills hit the save of step 8
ARGS = ["--data", "digits", "--steps", "12", "--save-every", "4", "--eval-every", "4", "--batch-size", "16",
        "--seed", "3"]


def cli(*argv) -> int:
    return netspec_main([str(a) for a in argv])


def killed(spec: Path, run: Path, stage: str, *argv) -> subprocess.CompletedProcess:
    """`netspec train ...` in a child process told to SIGKILL itself at `stage`."""
    code = "import sys; from netspec.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, ENV: stage, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=spec.parent)


def rows(run: Path) -> list[dict]:
    """metrics.csv without the speed column (wall-clock, never the same twice)."""
    return [{k: v for k, v in r.items() if not k.endswith("_per_s")} for r in csv.DictReader(open(run / "metrics.csv"))]


def weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A run never killed: what every killed-and-resumed run must end as."""
    root = tmp_path_factory.mktemp("ref")
    (root / "drop.nn").write_text(SPEC)
    assert cli("train", root / "drop.nn", *ARGS, "--out", root / "run") == 0
    return root / "run"


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "csv:truncate"])
def test_a_kill_at_any_point_of_a_save_resumes_to_the_same_run(tmp_path, reference, stage):
    spec = tmp_path / "drop.nn"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    p = killed(spec, run, f"{stage}@8", "train", spec, *ARGS, "--out", run)
    assert p.returncode == -9, p.stdout + p.stderr  # the kill really happened, at that stage
    assert not (run / "last" / "checkpoint.json").is_file() or \
        json.loads((run / "last" / "checkpoint.json").read_text())["step"] in (4, 8)
    assert cli("train", "--resume", run) == 0
    for name in ("last", "best"):
        a, b = weights(reference / name), weights(run / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert rows(run) == rows(reference)  # every row once, none lost, none twice
    assert not list(run.glob(".*.tmp")) and not (run / "last.prev").exists()


def test_a_kill_while_resume_truncates_metrics_loses_no_row(tmp_path, reference):
    spec = tmp_path / "drop.nn"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    assert killed(spec, run, "last:cleanup@8", "train", spec, *ARGS, "--out", run).returncode == -9
    with open(run / "metrics.csv", "a") as f:  # rows past the checkpoint, and half a row: a crash's leftovers
        f.write("9,1.0,1.0,0.001,5.0,,\n10,0.9")
    p = killed(spec, run, "csv:truncate@8", "train", "--resume", run)
    assert p.returncode == -9, p.stdout + p.stderr
    assert [int(r["step"]) for r in rows(run)][-1] == 10  # the rename had not happened: the old file is whole
    assert cli("train", "--resume", run) == 0
    assert rows(run) == rows(reference)
    a, b = weights(reference / "last"), weights(run / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------
# one unit: mismatched, truncated, missing


def _run_with_two_checkpoints(tmp_path) -> tuple[Path, Path]:
    """A run folder whose last/ is step 4, and a copy of its last/ at step 2."""
    run = tmp_path / "run"
    cfg = quiet(steps=4, save_every=2, eval_every=0)
    r = train(make("mlp"), cfg, "digits", run, stop_after=2, progress=False)
    assert r.step == 2
    old = tmp_path / "step2"
    shutil.copytree(run / "last", old)
    train(make("mlp"), cfg, "digits", run, resume=True, progress=False)
    return run, old


def test_a_mismatched_pair_is_refused_and_the_previous_checkpoint_used(tmp_path, capsys):
    run, old = _run_with_two_checkpoints(tmp_path)
    shutil.copy(old / "state.pt", run / "last" / "state.pt")  # state of step 2 beside weights of step 4
    # the manifest lists the sizes it wrote: make them agree, so only the ids tell the mismatch
    man = json.loads((run / "last" / "checkpoint.json").read_text())
    man["files"]["state.pt"] = os.path.getsize(run / "last" / "state.pt")
    (run / "last" / "checkpoint.json").write_text(json.dumps(man))
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.open_checkpoint(run)
    assert str(e.value) == (f"'{run / 'last'}' is not a complete checkpoint: state.pt is from another save "
                            "(step 2) than model.safetensors (step 4)")
    # an interrupted swap left the complete step-2 checkpoint as last.prev: it is used instead
    shutil.copytree(old, run / "last.prev")
    seen = []
    ck = ckpt.open_checkpoint(run, warn=seen.append)
    assert (ck.folder.name, ck.step) == ("last.prev", 2)
    assert seen == [f"warning: '{run / 'last'}' is not a complete checkpoint: state.pt is from another save "
                    f"(step 2) than model.safetensors (step 4); using '{run / 'last.prev'}' (step 2) instead"]
    # resuming goes on from step 2 and ends as an uninterrupted run does
    m = make("mlp", seed=7)
    r = train(m, quiet(steps=4, save_every=2, eval_every=0), "digits", run, resume=True, progress=False)
    assert r.step == 4 and "using" in capsys.readouterr().err
    ref = make("mlp")
    train(ref, quiet(steps=4, save_every=2, eval_every=0), "digits", tmp_path / "ref", progress=False)
    assert state_equal(ref, m)
    assert ckpt.open_checkpoint(run).folder.name == "last" and not (run / "last.prev").exists()


def test_weights_from_another_save_and_truncated_files_are_named(tmp_path):
    run, old = _run_with_two_checkpoints(tmp_path)
    saved = (run / "last" / "model.safetensors").read_bytes()
    shutil.copy(old / "model.safetensors", run / "last" / "model.safetensors")
    with pytest.raises(ckpt.CheckpointError, match=r"model.safetensors is from another save \(step 2\) than "
                                                    r"checkpoint.json \(step 4\)"):
        ckpt.open_checkpoint(run)
    (run / "last" / "model.safetensors").write_bytes(saved[:100])
    with pytest.raises(ckpt.CheckpointError, match=rf"model.safetensors has 100 bytes where {len(saved)} were "
                                                    r"written \(truncated\?\)"):
        ckpt.open_checkpoint(run)
    (run / "last" / "checkpoint.json").unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"it has no checkpoint.json \(a save was interrupted\)"):
        ckpt.open_checkpoint(run)
    (run / "last" / "checkpoint.json").write_text("[1, 2")
    with pytest.raises(ckpt.CheckpointError) as e:
        train(make("mlp"), quiet(steps=6, save_every=2, eval_every=0), "digits", run, resume=True, progress=False)
    assert str(e.value).startswith(f"'{run / 'last'}' is not a complete checkpoint: checkpoint.json is unreadable")


def test_a_truncated_weights_file_is_a_plain_error_for_eval(tmp_path, capsys):
    spec = tmp_path / "drop.nn"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    assert cli("train", spec, "--data", "digits", "--steps", 2, "--batch-size", 8, "--out", run) == 0
    capsys.readouterr()
    w = run / "last" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:50])
    assert cli("eval", run) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: '{run / 'last'}' is not a complete checkpoint: model.safetensors has 50 bytes")
    assert "internal error" not in err


def test_a_run_of_netspec_0_2_still_loads_and_a_mismatched_pair_is_refused(tmp_path):
    m = make("mlp")
    run = tmp_path / "old"
    train(m, quiet(steps=2, eval_every=0), "digits", run, progress=False)
    # the 0.2 layout: weights and state beside model.json, the step in the weights' metadata
    state = torch.load(run / "last" / "state.pt", weights_only=True)
    state.pop("checkpoint")
    torch.save(state, run / "state.pt")
    ckpt.save_weights(m, run / "model.safetensors", {"model": "MLP", "step": "2"})
    shutil.rmtree(run / "last")
    shutil.rmtree(run / "best")
    ck = ckpt.open_checkpoint(run)
    assert (ck.folder, ck.step, ck.id) == (run, 2, None)
    ckpt.save_weights(m, run / "model.safetensors", {"model": "MLP", "step": "5"})
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.open_checkpoint(run)
    assert str(e.value) == (f"'{run}': model.safetensors is from step 5 but state.pt from step 2: they are not "
                            "one checkpoint, so the run cannot resume")


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = quiet(steps=4, save_every=2, eval_every=0)
    train(make("mlp"), cfg, "digits", run, stop_after=2, progress=False)
    before = weights(run / "last")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_model", full)
    with pytest.raises(ckpt.CheckpointError) as e:
        train(make("mlp"), cfg, "digits", run, resume=True, progress=False)
    assert str(e.value) == (f"cannot write the best checkpoint into '{run}': No space left on device; "
                            "the previous one is intact")
    after = weights(run / "last")
    assert all(torch.equal(before[k], after[k]) for k in before) and not list(run.glob(".*.tmp"))
