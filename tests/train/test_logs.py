"""Logs people already read: TensorBoard event files (read back with TensorBoard's own
EventAccumulator), the `last` and `best` checkpoints, and early stopping."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from netspec.cli import main as netspec_main
from netspec.train.config import ConfigError, RunConfig
from netspec.train.trainer import TrainError, train
from tests.train.fixtures import make
from tests.train.test_trainer import quiet

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402 (the dev extra)


def events(run) -> EventAccumulator:
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def scalars(ea, tag) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def texts(ea, tag) -> list[str]:
    return [e.tensor_proto.string_val[0].decode() for e in ea.Tensors(tag)]


# --------------------------------------------------------------------------
# TensorBoard


def test_tensorboard_holds_the_metrics_graph_and_samples(tmp_path):
    run = tmp_path / "run"
    train(make("lenet"), quiet(steps=8, eval_every=4, log=("tensorboard",)), "digits", run, progress=False)
    ea = events(run)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    tags = ea.Tags()
    assert set(tags["scalars"]) == {"train/loss", "train/loss_logits", "train/lr", "train/samples_per_s", "val/loss",
                                    "val/accuracy"}
    for col, tag in (("loss", "train/loss"), ("lr", "train/lr"), ("val_accuracy", "val/accuracy")):
        want = [(int(r["step"]), float(r[col])) for r in rows if r[col]]
        got = scalars(ea, tag)
        assert [s for s, _ in got] == [s for s, _ in want], tag
        assert all(v == pytest.approx(w, rel=1e-5) for (_, v), (_, w) in zip(got, want)), tag  # csv keeps 6 digits
    assert tags["graph"]  # the model, traced
    assert [img.step for img in ea.Images("samples/input")] == [0]
    table = texts(ea, "samples/logits/text_summary")
    assert len(table) == 2 and table[0].startswith("| sample | label | predicted |")


def test_tensorboard_samples_follow_each_head_task(tmp_path):
    cfg = quiet(steps=2, eval_every=2, log=("tensorboard",))
    train(make("lm", block_size=32), cfg, "pycode", tmp_path / "lm", progress=False)
    ea = events(tmp_path / "lm")
    generated = texts(ea, "samples/logits/text_summary")
    assert len(generated) == 1 and " ⟶ " in generated[0]
    assert texts(ea, "samples/input/text_summary")[0].startswith("    ")
    train(make("seg"), cfg, "shapes", tmp_path / "seg", progress=False)
    ea = events(tmp_path / "seg")
    assert {"samples/mask/predicted", "samples/mask/true", "samples/input"} <= set(ea.Tags()["images"])
    train(make("ae"), cfg, "digits", tmp_path / "ae", progress=False)
    assert "samples/recon" in events(tmp_path / "ae").Tags()["images"]


def test_logging_to_tensorboard_changes_nothing_of_the_run(tmp_path):
    cfg = quiet(steps=6, eval_every=2, save_every=0)
    a, b = make("lm"), make("lm")
    train(a, cfg, "pycode", tmp_path / "a", progress=False)
    train(b, cfg.replace(log=["tensorboard"]), "pycode", tmp_path / "b", progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_resumed_run_purges_the_events_it_redoes(tmp_path):
    cfg = quiet(steps=8, eval_every=4, save_every=4, log_every=1, log=("tensorboard",))
    run = tmp_path / "run"
    train(make("mlp"), cfg, "digits", run, stop_after=4, progress=False)
    train(make("mlp"), cfg, "digits", run, resume=True, progress=False)
    ea = events(run)
    assert [s for s, _ in scalars(ea, "train/loss")] == list(range(1, 9))
    assert [s for s, _ in scalars(ea, "val/accuracy")] == [4, 8]


# --------------------------------------------------------------------------
# last, best, early stop


def test_best_follows_the_configured_metric(tmp_path):
    run = tmp_path / "run"
    r = train(make("mlp"), quiet(steps=20, eval_every=4, lr=3e-3), "digits", run, progress=False)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r["val_accuracy"]]
    best = max(rows, key=lambda r: (float(r["val_accuracy"]), -int(r["step"])))  # the first of equals
    man = json.loads((run / "best" / "checkpoint.json").read_text())
    assert (man["metric"], man["step"]) == ("val_accuracy", int(best["step"]))
    assert man["value"] == pytest.approx(float(best["val_accuracy"]), abs=1e-6)
    assert r.best == {"metric": "val_accuracy", "value": man["value"], "step": man["step"], "stale": r.best["stale"]}
    assert json.loads((run / "last" / "checkpoint.json").read_text())["step"] == 20
    assert "best_metric: val_accuracy" in (run / "config.yaml").read_text()  # the run config names it
    # best by the loss instead: smaller is better
    run2 = tmp_path / "run2"
    train(make("mlp"), quiet(steps=20, eval_every=4, lr=3e-3, best_metric="val_loss"), "digits", run2,
          progress=False)
    rows = [r for r in csv.DictReader(open(run2 / "metrics.csv")) if r["val_loss"]]
    assert json.loads((run2 / "best" / "checkpoint.json").read_text())["step"] == \
        int(min(rows, key=lambda r: float(r["val_loss"]))["step"])
    with pytest.raises(ConfigError, match=r"best_metric: MLP has no validation column 'val_acuracy' \(did you mean "
                                          r"'val_accuracy'\?\); its columns: val_accuracy, val_loss"):
        train(make("mlp"), quiet(steps=2, best_metric="val_acuracy"), "digits", None, progress=False)


def test_eval_and_sample_read_last_or_best(tmp_path, capsys):
    spec = tmp_path / "m.nn"
    spec.write_text("model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n")
    run = tmp_path / "run"
    assert netspec_main(["train", str(spec), "--data", "digits", "--steps", "20", "--eval-every", "5",
                         "--lr", "0.5", "--out", str(run)]) == 0
    capsys.readouterr()
    man = json.loads((run / "best" / "checkpoint.json").read_text())
    assert netspec_main(["eval", str(run), "--json", "--checkpoint", "best"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(man["value"], abs=1e-6)
    last = load_file(str(run / "last" / "model.safetensors"))
    best = load_file(str(run / "best" / "model.safetensors"))
    assert man["step"] == 20 or any(not torch.equal(last[k], best[k]) for k in last)


def test_early_stop_after_n_evals_without_improvement(tmp_path):
    run = tmp_path / "run"
    # lr 0: nothing improves after the first eval
    cfg = quiet(steps=100, eval_every=5, lr=1e-12, warmup_steps=0, early_stop=3)
    out = []
    r = train(make("mlp"), cfg, "digits", run, stream=_Sink(out), live=False)
    assert (r.step, r.early_stopped, r.interrupted) == (20, True, False)
    assert any(line.startswith("early stop at step 20: val_accuracy did not improve in 3 evals (best val_accuracy ")
               and line.endswith(f"at step 5, in {run / 'best'})") for line in out)
    assert out[-1].startswith("stopped early: MLP 20/100 steps")
    assert json.loads((run / "last" / "checkpoint.json").read_text())["step"] == 20
    with pytest.raises(TrainError, match=r"stopped early at step 20: val_accuracy did not improve in 3 evals .*pass "
                                         r"--early-stop 0 or a number above 3 to train on"):
        train(make("mlp"), cfg, "digits", run, resume=True, progress=False)
    r = train(make("mlp"), cfg.replace(early_stop=5), "digits", run, resume=True, progress=False)
    assert (r.step, r.early_stopped) == (30, True)  # two more evals without improvement: 5 in a row


class _Sink:
    """A stream collecting printed lines."""

    def __init__(self, lines):
        self.lines, self.buf = lines, ""

    def write(self, s):
        self.buf += s
        *done, self.buf = self.buf.split("\n")
        self.lines += [d for d in done if d]

    def flush(self):
        pass

    def isatty(self):
        return False


def test_run_config_rejects_unknown_logs():
    with pytest.raises(ConfigError, match="log must name logs among tensorboard, got 'wandb'"):
        RunConfig(log=("wandb",))
