"""A run folder is safe to receive and hard to damage: nothing is written through a planted link,
nothing in it runs code, one run writes it at a time, a finished run is overwritten only on
purpose, a diverged run never overwrites its last good checkpoint, and oversized models,
unwritable or full folders and nonsense values are plain errors before training starts."""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from netspec.cli import main as netspec_main
from netspec.train import preflight
from netspec.train.runlock import RunLock

MLP = "model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n"
QUICK = ("--data", "digits", "--steps", 2, "--batch-size", 8)


def cli(*argv) -> int:
    return netspec_main([str(a) for a in argv])


@pytest.fixture
def trained(tmp_path, capsys):
    """(spec, run folder) of a finished 2-step run."""
    spec = tmp_path / "m.nn"
    spec.write_text(MLP)
    run = tmp_path / "run"
    assert cli("train", spec, *QUICK, "--out", run) == 0
    capsys.readouterr()
    return spec, run


def err(capsys) -> str:
    return capsys.readouterr().err


# --------------------------------------------------------------------------
# planted links


def test_links_planted_in_a_run_folder_are_never_followed(tmp_path, trained, capsys):
    spec, run = trained
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ("metrics.csv", "config.yaml", "model.json"):  # read on resume: refused
        os.rename(run / name, tmp_path / name)
        (run / name).symlink_to(victim)
        assert cli("train", "--resume", run, "--steps", 4) == 1, name
        assert err(capsys).endswith(f"'{run / name}': is a symbolic link; a run's files are never read through "
                                    "links\n"), name
        (run / name).unlink()
        os.rename(tmp_path / name, run / name)
    # written only: replaced by a file of the run, the link's target untouched
    (run / "curves.png").unlink()
    (run / "curves.png").symlink_to(victim)
    # a checkpoint folder that is a link is no checkpoint: the complete last.prev is used, the link dropped
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("precious\n")
    os.rename(run / "last", run / "last.prev")
    (run / "last").symlink_to(elsewhere, target_is_directory=True)
    assert cli("train", "--resume", run, "--steps", 4) == 0
    assert f"warning: '{run / 'last'}' is not a complete checkpoint: it is a symbolic link" in err(capsys)
    assert victim.read_text() == "precious\n" and (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"] and (elsewhere / "keep").read_text() == "precious\n"
    assert not (run / "last").is_symlink() and json.loads((run / "last" / "checkpoint.json").read_text())["step"] == 4


def test_a_linked_spec_folder_or_log_folder_is_refused(tmp_path, trained, capsys):
    spec, run = trained
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "tensorboard").symlink_to(elsewhere, target_is_directory=True)
    assert cli("train", "--resume", run, "--steps", 4, "--log", "tensorboard") == 1
    assert err(capsys) == (f"error: cannot write the logs into '{run}': '{run / 'tensorboard'}': is a symbolic "
                           "link; a run's files are never written through links\n")
    assert list(elsewhere.iterdir()) == []
    (run / "tensorboard").unlink()
    for f in (run / "spec").iterdir():
        f.unlink()
    (run / "spec").rmdir()
    (run / "spec").symlink_to(elsewhere, target_is_directory=True)
    assert cli("train", spec, *QUICK, "--out", run, "--overwrite") == 1
    assert "is a symbolic link" in err(capsys)
    assert list(elsewhere.iterdir()) == []


def test_the_lock_file_is_never_followed(tmp_path, trained, capsys):
    spec, run = trained
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(victim)
    assert cli("train", "--resume", run, "--steps", 4) == 1
    assert err(capsys).startswith(f"error: cannot lock run folder '{run}': '{run / '.lock'}': ")
    assert victim.read_text() == "precious\n"


# --------------------------------------------------------------------------
# nothing in a run folder runs code


class Payload:
    """What a hostile CIFAR batch holds: unpickling it would run a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_data_named_by_a_received_run_folder_runs_no_code(tmp_path, trained, capsys):
    spec, run = trained
    payload = run / "payload"
    payload.mkdir()
    marker = tmp_path / "pwned"
    pickle.dump({b"data": Payload(marker), b"labels": [0]}, open(payload / "data_batch_1", "wb"))
    meta = json.loads((run / "model.json").read_text())
    meta["data"] = f"cifar10:{payload}"
    (run / "model.json").write_text(json.dumps(meta))
    assert cli("eval", run) == 1
    assert err(capsys) == (f"error: {payload / 'data_batch_1'}: refused as a CIFAR-10 python batch: it refers to "
                           f"'{os.system.__module__}.system', which CIFAR batches never do (only dicts, lists, "
                           "bytes, str, numbers and numpy arrays are read) (data 'cifar10:"
                           f"{payload}' for input 'x' of M)\n")
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("data: digits",
                                                                               f"data: {payload}"))
    assert cli("train", "--resume", run, "--steps", 4) == 1
    assert "refused as a CIFAR-10 python batch" in err(capsys)
    assert not marker.exists()


# --------------------------------------------------------------------------
# one writer, no accidental overwrite


def test_a_run_folder_in_use_is_refused_with_the_pid(trained, capsys):
    spec, run = trained
    with RunLock(run):
        assert cli("train", "--resume", run, "--steps", 4) == 1
        assert err(capsys) == f"error: run folder '{run}' is in use by PID {os.getpid()}\n"
        assert cli("train", spec, *QUICK, "--out", run, "--overwrite") == 1
        assert err(capsys) == f"error: run folder '{run}' is in use by PID {os.getpid()}\n"
    assert cli("train", "--resume", run, "--steps", 4) == 0


def test_a_finished_run_is_overwritten_only_on_purpose(trained, capsys):
    spec, run = trained
    before = load_file(str(run / "last" / "model.safetensors"))
    assert cli("train", spec, *QUICK, "--out", run, "--seed", 9) == 1
    assert err(capsys) == (f"error: '{run}' holds a run already (config.yaml, model.json, metrics.csv, "
                           f"curves.png); continue it with --resume {run}, or replace it with --overwrite\n")
    after = load_file(str(run / "last" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert cli("train", "--resume", run, "--overwrite") == 1
    assert err(capsys) == "error: --overwrite starts a run anew; it cannot go with --resume\n"
    assert cli("train", spec, *QUICK, "--out", run, "--seed", 9, "--overwrite", "--steps", 3) == 0
    assert json.loads((run / "last" / "checkpoint.json").read_text())["step"] == 3
    assert [r.split(",")[0] for r in (run / "metrics.csv").read_text().split()[1:]] == ["3"]


def test_an_unwritable_or_full_folder_fails_before_training(tmp_path, trained, monkeypatch, capsys):
    spec, _ = trained
    out = tmp_path / "new"
    def no_write(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(preflight.tempfile, "mkstemp", no_write)
    assert cli("train", spec, *QUICK, "--out", out) == 1
    assert err(capsys) == f"error: cannot write into run folder '{out}': Permission denied\n"
    assert not out.exists()  # nothing left behind
    monkeypatch.undo()
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: type("Usage", (), {"free": 1000})())
    assert cli("train", spec, *QUICK, "--out", out) == 1
    # 650 parameters under AdamW: last/ holds 3 x 2,600 bytes, best/ 2,600, each twice while replaced
    assert err(capsys) == (f"error: run folder '{out}' has 1.0 KB free; the checkpoints of a 650-parameter "
                           "model need 20.8 KB\n")
    assert not out.exists()


def test_a_read_only_folder_is_a_plain_error(tmp_path, trained, capsys, monkeypatch):
    spec, _ = trained
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: the file system's refusal, as a user gets it
        real = Path.mkdir

        def refuse(self, *a, **kw):
            if self.parent == ro:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self, *a, **kw)
        monkeypatch.setattr(Path, "mkdir", refuse)
    assert cli("train", spec, *QUICK, "--out", ro / "run") == 1
    assert err(capsys).startswith(f"error: cannot create run folder '{ro / 'run'}': Permission denied")


# --------------------------------------------------------------------------
# sizes


def test_oversized_models_are_refused_on_the_meta_device(tmp_path, monkeypatch, capsys):
    assert cli("train", "lenet", "--data", "digits", "--max-params", "10K", "--out", tmp_path / "a") == 1
    assert err(capsys) == ("error: LeNet5 has 61,706 parameters, more than max_params 10,000; check --set, or "
                           "raise --max-params (0: no cap)\n")
    assert not (tmp_path / "a").exists()
    # GPT-2 at n_embd=12800: 94 billion parameters, counted without allocating one
    assert cli("train", "gpt2", "--set", "n_layer=48", "n_embd=12800", "n_head=64", "--max-params", 0,
               "--out", tmp_path / "b") == 1
    assert re.fullmatch(r"error: GPT2 \(9[0-9,]{13} parameters\) needs 1\.5 TB for fp32 weights \+ adamw optimizer, "
                        r"[0-9.]+ [KMGT]B available on cpu\n", err(capsys))
    monkeypatch.setattr(preflight, "available_memory", lambda device: 500_000)
    assert cli("train", "lenet", "--data", "digits", "--out", tmp_path / "c") == 1
    assert err(capsys) == ("error: LeNet5 (61,706 parameters) needs 987.3 KB for fp32 weights + adamw optimizer, "
                           "500.0 KB available on cpu\n")


# --------------------------------------------------------------------------
# numerical faults


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_diverged_run_names_step_head_and_keeps_its_last_good_checkpoint(tmp_path, optimizer, capsys):
    (tmp_path / "run.yaml").write_text(f"optimizer: {optimizer}\n")
    out = tmp_path / "run"
    assert cli("train", "lenet", "--data", "digits", "--lr", "1e6", "--steps", 30, "--save-every", 5,
               "--config", tmp_path / "run.yaml", "--out", out) == 1
    msg = err(capsys).splitlines()[-1]
    m = re.fullmatch(rf"error: (the loss of head 'logits'|weight '[\w.]+'|optimizer state '\w+' of '[\w.]+') "
                     rf"became (nan|inf|-inf|non-finite) (at|by) step (\d+); the run stopped without saving: "
                     rf"'{re.escape(str(out / 'last'))}' \(step (\d+)\) is the last good checkpoint, resume it with "
                     rf"a lower learning rate: netspec train --resume {re.escape(str(out))} --lr 100000", msg)
    assert m, msg
    bad, good = int(m.group(4)), int(m.group(5))
    assert good < bad and good % 5 == 0
    assert json.loads((out / "last" / "checkpoint.json").read_text())["step"] == good
    w = load_file(str(out / "last" / "model.safetensors"))
    state = torch.load(out / "last" / "state.pt", weights_only=True)
    tensors = list(w.values()) + [t for s in state["optimizer"]["state"].values() for t in s.values()
                                  if isinstance(t, torch.Tensor) and t.is_floating_point()]
    assert all(torch.isfinite(t).all() for t in tensors)


# --------------------------------------------------------------------------
# values


@pytest.mark.parametrize("argv, message", [
    (("train", "lenet", "--lr", "nan"), "error: lr must be a finite number, got nan"),
    (("train", "lenet", "--epochs", "inf"), "error: epochs must be a finite number, got inf"),
    (("train", "lenet", "--seed", str(10**23)), f"error: seed is too large: {10**23}"),
    (("train", "lenet", "--seed", "-1"), "error: seed must not be negative, got -1"),
    (("train", "lenet", "--max-params", "lots"), "error: max_params: cannot read 'lots' as a int"),
    (("train", "lenet", "--early-stop", "-2"), "error: early_stop must not be negative, got -2"),
    (("sample", "run", "--prompt", "a", "--top-k", "0"), "error: --top-k must be at least 1, got 0"),
    (("sample", "run", "--prompt", "a", "--temperature", "nan"), "error: --temperature must be a positive number, got nan"),
    (("sample", "run", "--prompt", "a", "--tokens", str(10**12)),
     f"error: --tokens must be between 0 and 1,000,000, got {10**12}"),
    (("eval", "run", "--batches", "-1"), "error: --batches must not be negative"),
])
def test_nonsense_values_are_plain_errors(argv, message, capsys):
    assert cli(*argv) == 1
    assert err(capsys) == message + "\n"
