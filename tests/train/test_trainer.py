"""Tests of the training runtime: run config, optimizer and schedule, the loop, exact resume,
checkpoints with tied weights, the run folder, and the train / eval / sample CLI.

Models are the hand-written fixtures of tests/train/fixtures.py, plus one spec
compiled by the real `netspec.build` to check the two fit together.
"""
from __future__ import annotations

import csv
import io
import json
import math
import types

import pytest
import torch
import yaml

import netspec
from netspec.cli import main as netspec_main
from netspec.compiler.info import HeadInfo, ModelInfo
from netspec.dsl.library import resolve
from netspec.train import checkpoint as ckpt
from netspec.train.config import ConfigError, RunConfig, from_dict, load_config
from netspec.train.data import load_data
from netspec.train.optim import Schedule, make_optimizer
from netspec.train.runfolder import load_run
from netspec.train.sampling import generate
from netspec.train.trainer import TrainError, seed_all, train
from tests.train.fixtures import make

FAST = dict(batch_size=16, warmup_steps=2, eval_batches=2, log_every=2)


def quiet(**kw) -> RunConfig:
    return RunConfig(**{**FAST, **kw})


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------
# run config


def test_config_yaml_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("lr: 3e-4\nbatch_size: 32\nbetas: [0.9, 0.99]\ncompile: true\n")
    cfg = load_config(p, {"batch_size": 8, "steps": None})
    assert (cfg.lr, cfg.batch_size, cfg.betas, cfg.compile, cfg.steps) == (3e-4, 8, (0.9, 0.99), True, None)
    cfg.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    p.write_text("lr: 1e-3\nbatch_sise: 4\n")
    with pytest.raises(ConfigError, match=r"run.yaml: unknown key 'batch_sise' \(did you mean 'batch_size'\?\)"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate' \(did you mean 'lr'\?\)"):
        from_dict({"learning_rate": 1})
    with pytest.raises(ConfigError, match="optimizer must be one of adamw, sgd, got 'adam'"):
        RunConfig(optimizer="adam")
    with pytest.raises(ConfigError, match="batch_size: cannot read 'lots'"):
        from_dict({"batch_size": "lots"})


def test_schedule_warmup_cosine_and_floor():
    cfg = RunConfig(lr=1.0, warmup_steps=4, min_lr=0.1)
    s = Schedule(cfg, total_steps=104)
    assert s.lr(0) == pytest.approx(1 / 5) and s.lr(3) == pytest.approx(4 / 5)
    assert s.lr(4) == pytest.approx(1.0) and s.lr(54) == pytest.approx(0.55) and s.lr(104) == pytest.approx(0.1)
    assert Schedule(RunConfig(lr=1.0, warmup_steps=0, schedule="linear"), 10).lr(5) == pytest.approx(0.55)
    assert Schedule(RunConfig(lr=2.0, warmup_steps=0, schedule="constant"), 10).lr(9) == 2.0


def test_weight_decay_only_on_matrices():
    m = make("lm")
    opt = make_optimizer(m, RunConfig(weight_decay=0.1), torch.device("cpu"))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))  # the tied weight appears once
    assert isinstance(make_optimizer(m, RunConfig(optimizer="sgd"), torch.device("cpu")), torch.optim.SGD)


# --------------------------------------------------------------------------
# training


def test_train_writes_the_run_folder(tmp_path):
    m = make("mlp")
    out = tmp_path / "run"
    s = io.StringIO()
    r = train(m, quiet(steps=30, eval_every=10, lr=3e-3), "digits", out, stream=s, live=False)
    assert r.step == 30 and not r.interrupted
    for f in ("config.yaml", "model.json", "metrics.csv", "curves.png", "last/model.safetensors", "last/state.pt",
              "last/checkpoint.json", "best/model.safetensors", "best/checkpoint.json"):
        assert (out / f).is_file(), f
    assert yaml.safe_load((out / "config.yaml").read_text())["data"] == "digits"
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == "MLP" and meta["params"] == {"hidden": 64}
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert list(rows[0]) == ["step", "loss_logits", "loss", "lr", "samples_per_s", "val_loss", "val_accuracy"]
    assert [int(r["step"]) for r in rows] == list(range(2, 31, 2))
    evals = [r for r in rows if r["val_loss"]]
    assert [int(r["step"]) for r in evals] == [10, 20, 30]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert r.val["accuracy"] == pytest.approx(float(evals[-1]["val_accuracy"]), abs=1e-5)
    assert r.val["accuracy"] > 0.5  # 30 steps of an MLP on digits already beat chance by far
    text = s.getvalue()
    assert "step 30/30" in text and text.rstrip().splitlines()[-1].startswith("done: MLP 30/30 steps")


@pytest.mark.parametrize("kind", ["conv", "lm"])
def test_resume_is_exact(tmp_path, kind):
    # conv: BatchNorm buffers + dropout; lm: tied weights + dropout; both with grad accumulation
    cfg = quiet(steps=8, eval_every=4, save_every=0, grad_accum=2, batch_size=8)
    data = load_data(None, make(kind).netspec, cfg)
    a = make(kind)
    train(a, cfg, data, tmp_path / "a", progress=False)
    b = make(kind)
    r = train(b, cfg, data, tmp_path / "b", stop_after=4, progress=False)
    assert (r.step, r.interrupted) == (4, True)
    c = make(kind, seed=99)  # different initial weights: everything must come from the checkpoint
    r = train(c, cfg, data, tmp_path / "b", resume=True, progress=False)
    assert r.step == 8 and state_equal(a, c)
    la = [row["loss"] for row in csv.DictReader(open(tmp_path / "a" / "metrics.csv"))]
    lb = [row["loss"] for row in csv.DictReader(open(tmp_path / "b" / "metrics.csv"))]
    assert la == lb  # metrics.csv continues seamlessly


def test_resume_errors(tmp_path):
    with pytest.raises(TrainError, match=r"has no checkpoint \(no last/\)"):
        train(make("mlp"), quiet(steps=2), "digits", tmp_path, resume=True, progress=False)
    train(make("mlp"), quiet(steps=2), "digits", tmp_path, progress=False)
    with pytest.raises(TrainError, match="already finished 2 of 2 steps"):
        train(make("mlp"), quiet(steps=2), "digits", tmp_path, resume=True, progress=False)


def test_tied_weights_survive_safetensors(tmp_path):
    m = make("lm")
    ckpt.save_weights(m, tmp_path / "w.safetensors")
    m2 = make("lm", seed=3)
    ckpt.load_weights_file(m2, tmp_path / "w.safetensors")
    assert state_equal(m, m2)
    assert m2.lm_head.weight.data_ptr() == m2.wte.weight.data_ptr()  # still one tensor
    with pytest.raises(ckpt.CheckpointError, match="do not fit the model"):
        ckpt.load_weights_file(make("lm", n_embd=16), tmp_path / "w.safetensors")


def test_every_task_trains_and_evaluates():
    cfg = quiet(steps=3, eval_every=0)
    for kind, keys in [("seg", {"iou", "pixel_accuracy"}), ("ae", set()), ("regress", set()),
                       ("twohead", {"accuracy"})]:
        m = make(kind)
        r = train(m, cfg, None, None, progress=False)
        assert r.step == 3 and math.isfinite(r.train_loss), kind
        assert keys <= set(r.val) and "loss" in r.val, kind
    m = make("twohead")
    v = train(m, cfg, None, None, progress=False).val
    assert v["loss"] == pytest.approx(v["logits/loss"] + 0.5 * v["recon/loss"])


def test_bf16_autocast_and_sgd_on_cpu():
    r = train(make("mlp"), quiet(steps=4, precision="bf16", optimizer="sgd", lr=0.05), "digits", None,
              progress=False)
    assert r.step == 4 and math.isfinite(r.train_loss)


def test_epochs_become_steps():
    r = train(make("mlp"), quiet(epochs=1, batch_size=100), "digits", None, progress=False)
    assert r.total_steps == 14  # 1438 training samples // 100


def test_sampling_crops_the_context_and_is_seeded():
    m = make("lm", block_size=8)
    torch.manual_seed(0)
    a = generate(m, [1, 2, 3], 20, block_size=8, temperature=1.0, top_k=5)
    torch.manual_seed(0)
    b = generate(m, [1, 2, 3], 20, block_size=8, temperature=1.0, top_k=5)
    assert a == b and len(a) == 23 and a[:3] == [1, 2, 3]
    assert all(0 <= t < 256 for t in a)
    assert max(generate(m, [1], 30, block_size=8, vocab_size=10)) < 10


# --------------------------------------------------------------------------
# CLI


def run_cli(*argv) -> int:
    return netspec_main([str(a) for a in argv])


@pytest.fixture
def fake_build(monkeypatch, tmp_path):
    """netspec.build stand-in: the spec file's text names a fixture ("lm", "mlp", ...)."""
    calls = []

    def build(path, model=None, **params):
        resolve(str(path))  # fails as the real build does: a path or a stdlib name
        calls.append((path, model, params))
        kind = open(path).read().strip()
        m = make(kind, **({"classes": params["classes"]} if "classes" in params else {}))
        m.netspec = ModelInfo(m.netspec.name, str(path), {**m.netspec.params, **params}, m.netspec.inputs,
                              m.netspec.heads if "classes" not in params else
                              (HeadInfo("logits", "classify", shape=(2, params["classes"])),))
        return m

    def analyze(path, model=None, overrides=None, **kw):  # the meta-device count before building
        m = build(path, model, **(overrides or {}))
        calls.pop()
        return types.SimpleNamespace(info=m.netspec, num_params=sum(p.numel() for p in m.parameters()))

    monkeypatch.setattr(netspec.compiler, "build", build, raising=False)
    monkeypatch.setattr(netspec.compiler, "analyze", analyze, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def test_cli_train_eval_sample_resume(tmp_path, fake_build, capsys):
    spec = tmp_path / "lm.nn"
    spec.write_text("lm")
    out = tmp_path / "run"
    assert run_cli("train", spec, "--steps", 4, "--batch-size", 4, "--out", out, "--eval-every", 2,
                   "--seed", 5) == 0
    assert fake_build[-1] == (str(spec), None, {})
    assert (out / "spec" / "lm.nn").read_text() == "lm"
    capsys.readouterr()
    assert run_cli("eval", out, "--json", "--batches", 2) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "perplexity"} and res["perplexity"] == pytest.approx(math.exp(res["loss"]))
    assert run_cli("sample", out, "--prompt", "def ", "--tokens", 5, "--seed", 1) == 0
    text = capsys.readouterr().out
    assert text.startswith("def ")
    assert run_cli("sample", out, "--prompt", "def ", "--tokens", 5, "--seed", 1) == 0
    assert capsys.readouterr().out == text
    # resume with more steps: rebuilt from the run folder, not the original file
    spec.write_text("mlp")
    assert run_cli("train", "--resume", out, "--steps", 6) == 0
    assert fake_build[-1][0] == str(out / "spec" / "lm.nn")
    assert yaml.safe_load((out / "config.yaml").read_text())["steps"] == 6
    assert int(list(csv.DictReader(open(out / "metrics.csv")))[-1]["step"]) == 6


def test_cli_set_overrides_and_default_out(tmp_path, fake_build, monkeypatch, capsys):
    import sys
    import types

    if "dsl.params" not in sys.modules:
        try:
            import netspec.dsl.params  # noqa: F401
        except ImportError:
            stub = types.ModuleType("dsl.params")
            stub.parse_overrides = lambda items: {k: int(v) for k, v in (i.split("=") for i in items)}
            monkeypatch.setitem(sys.modules, "dsl.params", stub)
    spec = tmp_path / "mlp.nn"
    spec.write_text("mlp")
    assert run_cli("train", spec, "--set", "classes=12", "--data", "digits", "--steps", 1) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: data 'digits' has 10 classes but head 'logits' of MLP outputs 12"
    assert fake_build[-1][2] == {"classes": 12}
    assert run_cli("train", spec, "--steps", 2, "--batch-size", 8) == 0
    assert run_cli("train", spec, "--steps", 2, "--batch-size", 8) == 0
    assert (tmp_path / "runs" / "MLP" / "last" / "state.pt").is_file() and (tmp_path / "runs" / "MLP-2").is_dir()


def test_cli_user_errors_exit_1(tmp_path, fake_build, capsys):
    spec = tmp_path / "lm.nn"
    spec.write_text("lm")
    cases = [
        (("train", tmp_path / "missing.nn"), "error: no such spec file '"),
        (("train", spec, "--data", "nowhere"), "error: data 'nowhere' is neither a known source"),
        (("train", "--resume", tmp_path), "error: cannot resume: '"),
        (("eval", tmp_path / "norun"), "error: run folder '"),
        (("train", spec, "--config", tmp_path / "none.yaml"), "error: config file '"),
    ]
    for argv, msg in cases:
        assert run_cli(*argv) == 1, argv
        assert capsys.readouterr().err.startswith(msg), argv
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    assert run_cli("train", spec, "--config", bad) == 1
    assert "unknown key 'stepz' (did you mean 'steps'?)" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("train", "x.nn", "--steps", 3, "--epochs", 2)
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run_cli("sample")  # RUN_DIR is required
    assert e.value.code == 2


def test_real_compiler_build_trains(tmp_path, capsys):
    spec = tmp_path / "mlp.nn"
    spec.write_text("model DigitsMLP(hidden=32, classes=10):\n"
                    "    input x: [B=1, 64]\n"
                    "    fc1: Linear(64, hidden)\n"
                    "    relu: ReLU()\n"
                    "    fc2: Linear(hidden, classes)\n"
                    "    head logits: classify\n")
    out = tmp_path / "run"
    assert run_cli("train", spec, "--data", "digits", "--steps", 40, "--lr", "3e-3", "--out", out) == 0
    capsys.readouterr()
    assert run_cli("eval", out, "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "accuracy"} and res["accuracy"] > 0.6
    assert json.loads((out / "model.json").read_text())["overrides"] == {}


def test_progress_rich_on_a_terminal_plain_lines_otherwise():
    plain = io.StringIO()
    train(make("mlp"), quiet(steps=40, eval_every=20, log_every=1), "digits", None, stream=plain, live=False)
    lines = plain.getvalue().splitlines()
    steps = [ln for ln in lines if ln.startswith("step ") and "/40" in ln]
    assert 15 <= len(steps) <= 25  # about twenty lines a run, not one per step
    assert sum(ln.startswith("step 20: val loss") or ln.startswith("step 40: val loss") for ln in lines) == 2
    assert lines[-1].startswith("done: MLP 40/40 steps")
    live = io.StringIO()
    train(make("mlp"), quiet(steps=4, eval_every=0), "digits", None, stream=live, live=True)
    assert "done: MLP 4/4 steps" in live.getvalue()


def test_compile_and_bf16_autocast_paths_train_on_cpu(tmp_path):
    """The GPU recipe (--compile --precision bf16) runs end to end on CPU too: torch.compile
    wraps the model, autocast computes in bfloat16, the weights stay float32 and change."""
    spec = tmp_path / "tiny.nn"
    spec.write_text("model Tiny():\n    input x: float[B=4, 1, 8, 8]\n    flatten(1)\n"
                    "    fc1: Linear(64, 32); ReLU()\n    fc2: Linear(32, 10)\n    head logits: classify\n")
    out = tmp_path / "run"
    code = netspec_main(["train", str(spec), "--data", "digits", "--steps", "4", "--batch-size", "8",
                           "--compile", "--precision", "bf16", "--device", "cpu", "--out", str(out),
                           "--eval-every", "4", "--seed", "0"])
    assert code == 0
    from safetensors.torch import load_file
    w = load_file(str(out / "last" / "model.safetensors"))
    assert w["fc1.weight"].dtype == torch.float32
    seed_all(0)  # the run built its model right after seeding: the same initial weights
    fresh = netspec.build(spec)
    assert not torch.equal(w["fc1.weight"], fresh.fc1.weight.detach())
    assert set(w) == set(fresh.state_dict())
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) >= 2 and all("nan" not in r for r in rows[1:])


def test_input_sizes_are_chosen_on_the_command_line_and_kept_by_the_run(tmp_path):
    out = tmp_path / "run"
    spec = "unet"  # a stdlib name, as users write it
    code = netspec_main(["train", str(spec), "--set", "base_channels=4", "padding=same", "num_classes=3",
                           "--input", "x=1x1x32x32", "--data", "shapes", "--steps", "2", "--batch-size", "4",
                           "--out", str(out), "--eval-every", "2"])
    assert code == 0
    import json
    meta = json.loads((out / "model.json").read_text())
    assert meta["inputs"][0]["shape"] == [1, 1, 32, 32]
    model, _, _ = load_run(out)
    assert model.netspec.inputs[0].shape == (1, 1, 32, 32) and model.netspec.heads[0].shape == (1, 3, 32, 32)
