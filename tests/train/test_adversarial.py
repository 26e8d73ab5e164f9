"""Two models, two optimizers: the GAN of specs/gan.nn trained from the command line at a tiny
size, its losses by hand, the pair's checks, resuming, `eval --judge` and `sample -o`; and the
autoencoder's reconstruct head (pixels in [0, 1], relative MSE, the reconstructions figure).
"""
from __future__ import annotations

import csv
import json
import math
import textwrap
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main as cli_main
from netspec.train import load_run
from netspec.train.pair import generator_overrides, load_critic
from netspec.train.config import RunConfig
from netspec.train.data import load_data
from netspec.train.errors import TrainError
from netspec.train.losses import LOSSES, critic_loss
from netspec.train.metrics import METRICS, relative_mse
from netspec.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
GAN = str(REPO / "specs" / "gan.nn")
TINY = ["ngf=4", "ndf=4", "nz=8"]


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_gan_losses_by_hand():
    fake = torch.tensor([[2.0], [-1.0]])  # the critic's logits for two generated samples
    torch.testing.assert_close(LOSSES["nonsaturating"](fake, {}), torch.tensor([-math.log(sig(2.0)),
                                                                               -math.log(sig(-1.0))]))
    real = torch.tensor([[3.0], [0.0]])
    want = [-math.log(sig(3.0)) - math.log(1 - sig(2.0)), -math.log(sig(0.0)) - math.log(1 - sig(-1.0))]
    torch.testing.assert_close(critic_loss(real, fake), torch.tensor(want))
    d_real, d_fake = METRICS["d_real"], METRICS["d_fake"]
    batch = {"real_score": real}
    assert d_real.result(d_real.statistic(fake, batch), 0.0) == pytest.approx((sig(3.0) + sig(0.0)) / 2)
    assert d_fake.result(d_fake.statistic(fake, batch), 0.0) == pytest.approx((sig(2.0) + sig(-1.0)) / 2)


def test_set_values_go_to_the_model_that_has_them():
    assert generator_overrides(GAN, None, {"ngf": 4, "ndf": 8}) == {"ngf": 4}
    assert generator_overrides(GAN, None, {"ngf": 4}) is None  # all its own: nothing to split
    assert generator_overrides(GAN, None, {"ngf": 4, "bogus": 1}) is None  # its build names 'bogus'
    assert generator_overrides(str(REPO / "specs" / "mlp.nn"), None, {"p": 0.1}) is None


def test_gan_trains_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "gan"
    assert cli_main(["train", GAN, "--data", "digits", "--set", *TINY, "--steps", "4", "--batch-size", "8",
                     "--eval-every", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Generator against Discriminator:" in printed and "d_real" in printed
    meta = json.loads((out / "model.json").read_text())
    assert meta["overrides"] == {"ngf": 4, "nz": 8}
    assert meta["critic"] == {"model": "Discriminator", "overrides": {"ndf": 4}}
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["samples_000002.png", "samples_000004.png"]
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "loss_fake", "loss", "loss_critic", "lr", "samples_per_s", "val_loss",
                             "val_loss_critic", "val_d_real", "val_d_fake"]
    assert rows[-1]["step"] == "4" and 0 <= float(rows[-1]["val_d_fake"]) <= 1
    gen, cfg, _ = load_run(out)
    critic = load_critic(out, gen.netspec)
    assert sum(p.numel() for p in critic.parameters()) == sum(
        p.numel() for p in netspec.build(GAN, "Discriminator", ndf=4).parameters())
    # eval: the critic's verdicts, as JSON
    assert cli_main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "critic_loss", "d_real", "d_fake"}
    # sample: a grid of images
    png = tmp_path / "grid.png"
    assert cli_main(["sample", str(out), "-o", str(png), "--count", "12", "--seed", "0"]) == 0
    from PIL import Image

    with Image.open(png) as im:
        w, h = im.size
    assert (w, h) == (2 + 8 * (56 + 2), 2 + 2 * (56 + 2))  # 28x28 doubled, 8 a row, 2 rows
    assert cli_main(["eval", str(out), "--judge", str(out)]) == 1
    assert "has no classify head to judge samples with" in capsys.readouterr().err


def test_a_classifier_run_judges_the_samples(tmp_path, capsys):
    gan, judge = tmp_path / "gan", tmp_path / "judge"
    assert cli_main(["train", GAN, "--data", "digits", "--set", *TINY, "--steps", "1", "--batch-size", "8",
                     "--out", str(gan)]) == 0
    assert cli_main(["train", str(REPO / "specs" / "digits_cnn.nn"), "--data", "digits", "--steps", "2",
                     "--batch-size", "8", "--out", str(judge)]) == 0
    capsys.readouterr()
    assert cli_main(["eval", str(gan), "--judge", str(judge), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)["judge"]
    assert j["samples"] == 1000 and j["classes"] == 10 and 0.1 <= j["mean_top_probability"] <= 1
    assert sum(j["class_shares"].values()) == pytest.approx(1, abs=1e-3)
    assert j["classes_covered"] == sum(s >= 0.01 for s in j["class_shares"].values())
    assert cli_main(["eval", str(judge), "--judge", str(judge)]) == 1
    assert "--judge rates a generator's samples, but DigitsCNN has no adversarial head" in capsys.readouterr().err


def _rows(run: Path) -> list[dict]:
    """metrics.csv without the speed column (wall-clock, never the same twice)."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not k.endswith("_per_s")} for r in csv.DictReader(f)]


def _gan_run(out, steps, resume=False, stop_after=None, **cfg):
    torch.manual_seed(0)
    g = netspec.build(GAN, ngf=4, nz=8)
    if resume:
        g, _, _ = load_run(out, weights=False)
    cfg = RunConfig(**{"data": "digits", "steps": steps, "batch_size": 8, "eval_every": 2, "log_every": 1, "seed": 5,
                       **cfg})
    train(g, cfg, None, out, resume=resume, stop_after=stop_after, overrides={"ngf": 4, "nz": 8, "ndf": 4},
          progress=False)
    return g, load_critic(out, g.netspec)


def test_gan_resume_is_exact(tmp_path):
    g1, c1 = _gan_run(tmp_path / "a", 4)
    _gan_run(tmp_path / "b", 4, stop_after=2)
    assert [r["step"] for r in _rows(tmp_path / "b")] == ["1", "2"]
    g2, c2 = _gan_run(tmp_path / "b", 4, resume=True)
    for a, b in ((g1, g2), (c1, c2)):
        for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(v, w), k
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert [r["step"] for r in _rows(tmp_path / "b")] == ["1", "2", "3", "4"]
    # one checkpoint: both models and both optimizers in last/, nothing beside model.json
    last = tmp_path / "b" / "last"
    assert sorted(p.name for p in last.iterdir()) == ["checkpoint.json", "critic.safetensors", "model.safetensors",
                                                      "state.pt"]
    manifest = json.loads((last / "checkpoint.json").read_text())
    assert manifest["step"] == 4 and manifest["model"] == "Generator" and manifest["critic"] == "Discriminator"
    assert set(torch.load(last / "state.pt", weights_only=True)) >= {"optimizer", "critic_optimizer", "rng", "loader"}
    assert not (tmp_path / "b" / "critic.safetensors").exists() and not (tmp_path / "b" / "best").exists()


def test_a_gan_run_is_not_trained_over_without_overwrite(tmp_path, capsys):
    out = tmp_path / "gan"
    argv = ["train", GAN, "--data", "digits", "--set", *TINY, "--steps", "1", "--batch-size", "8", "--out", str(out)]
    assert cli_main(argv) == 0
    before = (out / "last" / "critic.safetensors").read_bytes()
    capsys.readouterr()
    assert cli_main(argv) == 1
    assert capsys.readouterr().err.startswith(f"error: '{out}' holds a run already (config.yaml, model.json, ")
    assert (out / "last" / "critic.safetensors").read_bytes() == before
    # train() itself refuses too (the CLI checks before building; train() under the run folder's lock)
    with pytest.raises(netspec.train.RunError, match="holds a run already"):
        _gan_run(out, 1)
    assert cli_main(argv + ["--overwrite", "--steps", "2"]) == 0
    assert json.loads((out / "last" / "checkpoint.json").read_text())["step"] == 2
    assert [r["step"] for r in _rows(out)] == ["2"]  # the earlier run's rows went with it


def test_a_gan_has_no_best_checkpoint(tmp_path, capsys):
    out = tmp_path / "gan"
    assert cli_main(["train", GAN, "--data", "digits", "--set", *TINY, "--steps", "1", "--batch-size", "8",
                     "--out", str(out)]) == 0
    capsys.readouterr()
    for cmd in (["eval", str(out), "--checkpoint", "best"], ["sample", str(out), "--checkpoint", "best", "-o",
                                                              str(tmp_path / "s.png")]):
        assert cli_main(cmd) == 1
        assert capsys.readouterr().err == (f"error: '{out}' is a GAN run, which keeps no best/ checkpoint (its "
                                           "validation loss does not rank generators); use the last one (leave out "
                                           "--checkpoint)\n")
    with pytest.raises(TrainError) as e:
        train(netspec.build(GAN, ngf=4, nz=8), RunConfig(steps=1, early_stop=2), "digits", None, progress=False)
    assert str(e.value) == ("adversarial training keeps no best/ checkpoint (a GAN's validation loss does not rank "
                            "its generators): leave out early_stop")


def test_a_nan_loss_stops_a_gan_without_overwriting_its_checkpoint(tmp_path, monkeypatch):
    from netspec.train import adversarial

    calls = []

    def poisoned(real, fake):  # the critic's loss of the third step is NaN
        calls.append(1)
        terms = critic_loss(real, fake)
        return terms * float("nan") if len(calls) == 3 else terms

    monkeypatch.setattr(adversarial, "critic_loss", poisoned)
    out = tmp_path / "gan"
    with pytest.raises(TrainError) as e:
        _gan_run(out, 4, eval_every=0, save_every=2)
    assert str(e.value) == (f"the critic's loss became nan at step 3; the run stopped without saving: "
                            f"'{out / 'last'}' (step 2) is the last good checkpoint, resume it with a lower "
                            f"learning rate: netspec train --resume {out} --lr {RunConfig().lr / 10:g}")
    assert json.loads((out / "last" / "checkpoint.json").read_text())["step"] == 2
    monkeypatch.setattr(adversarial, "critic_loss", critic_loss)
    g, c = _gan_run(out, 4, resume=True, eval_every=0, save_every=2)  # the good checkpoint resumes
    assert json.loads((out / "last" / "checkpoint.json").read_text())["step"] == 4


def test_a_gan_takes_no_pytorch_data():
    data = torch.utils.data.TensorDataset(torch.zeros(4, 1, 28, 28))
    with pytest.raises(TrainError) as e:
        train(netspec.build(GAN, ngf=4, nz=8), RunConfig(steps=1), data, None, progress=False)
    assert str(e.value) == ("adversarial training reads its real samples from a SOURCE (data='digits', ...) or a "
                            "loaded Data, not from PyTorch data")


def test_a_gan_run_of_the_layout_before_last_is_refused(tmp_path, capsys):
    out = tmp_path / "gan"
    assert cli_main(["train", GAN, "--data", "digits", "--set", *TINY, "--steps", "1", "--batch-size", "8",
                     "--out", str(out)]) == 0
    for name in ("model.safetensors", "critic.safetensors", "state.pt"):  # as the GAN loop once left them
        (out / "last" / name).rename(out / name)
    import shutil

    shutil.rmtree(out / "last")
    capsys.readouterr()
    assert cli_main(["eval", str(out)]) == 1
    assert capsys.readouterr().err == (f"error: '{out}' keeps its weights in the folder itself (the layout before "
                                       "last/), which has no place for critic.safetensors; train this run anew\n")


def test_the_critic_must_take_the_generators_samples(tmp_path):
    spec = tmp_path / "gan.nn"
    spec.write_text(textwrap.dedent("""\
        model G(nz=4):
            input z: float[B=2, nz]
            fc: Linear(nz, 64)
            view(B, 1, 8, 8)
            Tanh()
            head fake: adversarial(critic="D")

        model D():
            input img: float[B=2, 1, 16, 16]
            flatten(1)
            fc: Linear(256, 1)
            head score

        model Self():
            input z: float[B=2, 4]
            fc: Linear(4, 4)
            head y: adversarial(critic="Self")

        model NoCritic():
            input z: float[B=2, 4]
            fc: Linear(4, 4)
            head y: adversarial
    """))
    with pytest.raises(TrainError) as e:
        train(netspec.build(str(spec), "G"), RunConfig(steps=1, batch_size=4), "digits", None, progress=False)
    assert str(e.value) == "head 'fake' of G outputs [2, 1, 8, 8], but its critic D takes [2, 1, 16, 16] (input 'img')"
    with pytest.raises(TrainError) as e:
        train(netspec.build(str(spec), "Self"), RunConfig(steps=1), "digits", None, progress=False)
    assert str(e.value) == "head 'y' of Self: a model cannot be its own critic"
    with pytest.raises(Exception) as e:
        train(netspec.build(str(spec), "NoCritic"), RunConfig(steps=1), "digits", None, progress=False)
    assert "task 'adversarial' needs critic=..." in str(e.value)


# --------------------------------------------------------------------------
# reconstruct


def test_relative_mse_by_hand():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    stat = METRICS["relative_mse"].statistic(torch.zeros(3, 2), {"x": x})
    # predicting the mean image (0.5, 2/3) costs the mean of the pixels' variances
    var = (((x - x.mean(0)) ** 2).mean(0)).mean()
    assert relative_mse(stat, 0.01) == pytest.approx(0.01 / float(var))
    assert METRICS["mse"].result(None, 0.01) == 0.01


def test_autoencoder_trains_on_unit_pixels_and_draws_its_reconstructions(tmp_path, capsys):
    out = tmp_path / "ae"
    assert cli_main(["train", str(REPO / "specs" / "autoencoder.nn"), "--data", "digits", "--steps", "3",
                     "--batch-size", "8", "--set", "latent=4", "--out", str(out)]) == 0
    assert "relative_mse" in capsys.readouterr().out
    data = load_data("digits", netspec.build(str(REPO / "specs" / "autoencoder.nn")).netspec)
    x = data.val.batch(list(range(32)))["x"]
    assert data.want.pixels == "unit" and float(x.min()) >= 0 and float(x.max()) <= 1  # like the Sigmoid's output
    from PIL import Image

    with Image.open(out / "figures" / "reconstructions_000003.png") as im:
        assert im.size == (2 + 8 * (56 + 2), 2 + 2 * (56 + 2))  # 8 inputs above 8 reconstructions
    assert cli_main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "mse", "relative_mse"} and res["mse"] == res["loss"]
