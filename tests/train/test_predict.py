"""`netspec predict RUN_DIR INPUT...`: outputs against the run's model on inputs prepared by hand
from data.json (images, .csv / .npy vectors), prompts of lm runs as `sample`, and the errors."""
from __future__ import annotations

import csv
import json
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from netspec.cli import main
from tests.cli import run
from netspec.train import load_run, predict
from netspec.train.data import want_from_info
from netspec.train.data.core import fit_images

CONV = textwrap.dedent("""
    model Tiny(classes=2):
        input x: [B=1, 3, 16, 16]
        Conv2d(3, 4, 3, padding=1)
        ReLU()
        AdaptiveAvgPool2d(1)
        flatten(1)
        fc: Linear(4, classes)
        head logits: classify
""").lstrip()

TWO_HEADS = textwrap.dedent("""
    model Two():
        input x: [B=1, 4]
        h: Linear(4, 8)
        ReLU()
        cls: Linear(8, 3)
        h
        pos: Linear(8, 2)
        head species = cls: classify
        head where = pos
""").lstrip()

QUICK = ["--steps", "2", "--batch-size", "4", "--eval-every", "0", "--device", "cpu"]



@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A run of Tiny on a two-class image folder of differently sized RGB images."""
    d = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    for c, (name, colour) in enumerate((("cats", (200, 60, 40)), ("dogs", (40, 60, 200)))):
        (d / "pics" / name).mkdir(parents=True)
        for i in range(6):
            a = (rng.random((20 + i, 24, 3)) * 80 + np.array(colour) * 0.6).astype(np.uint8)
            Image.fromarray(a).save(d / "pics" / name / f"{i}.png")
    (d / "tiny.nn").write_text(CONV)
    assert main(["train", str(d / "tiny.nn"), "--data", f"images:{d / 'pics'}", *QUICK, "--out", str(d / "run")]) == 0
    return d


def by_hand(run_dir, files) -> torch.Tensor:
    """Class probabilities of the run's model for image files, prepared as data.json says."""
    model, cfg, _ = load_run(run_dir)
    facts = json.loads((run_dir / "data.json").read_text())
    want = want_from_info(model.netspec)
    xs = []
    for f in files:
        im = Image.open(f).convert("RGB").resize((16, 16), Image.BILINEAR)
        xs.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255)
    x = fit_images(torch.stack(xs), want, facts["normalize"]["mean"], facts["normalize"]["std"])
    with torch.no_grad():
        return torch.softmax(model.eval()(x), -1)


def test_images_and_folders_give_class_names_and_probabilities(image_run, capsys):
    d = image_run
    facts = json.loads((d / "run" / "data.json").read_text())
    assert facts["classes"] == ["cats", "dogs"] and facts["inputs"] == "images"
    assert set(facts["normalize"]) == {"mean", "std"}
    files = sorted((d / "pics").rglob("*.png"))
    code, out, err = run(["predict", str(d / "run"), str(d / "pics" / "dogs" / "0.png"), str(d / "pics"), "--json"],
                         capsys)
    assert code == 0, err
    results = json.loads(out)
    assert [r["input"] for r in results] == [str(d / "pics" / "dogs" / "0.png")] + [str(f) for f in files]
    want = by_hand(d / "run", [d / "pics" / "dogs" / "0.png"] + files)
    for r, p in zip(results, want):
        got = r["heads"]["logits"]
        assert list(got["probabilities"]) == ["cats", "dogs"]
        torch.testing.assert_close(torch.tensor(list(got["probabilities"].values())), p, rtol=1e-5, atol=1e-6)
        assert got["class"] == ["cats", "dogs"][int(p.argmax())] and got["index"] == int(p.argmax())
    code, out, _ = run(["predict", str(d / "run"), str(files[0]), "--top", "1"], capsys)
    p = want[1]
    assert out == f"{files[0]}  {['cats', 'dogs'][int(p.argmax())]} {float(p.max()):.3f}\n"
    assert predict(d / "run", [str(files[0])]) == results[1:2]


def test_runs_from_before_data_json_read_their_data_again(image_run, capsys):
    d = image_run
    files = [str(d / "pics" / "cats" / "1.png")]
    before = predict(d / "run", files)
    facts = d / "run" / "data.json"
    saved = facts.read_text()
    facts.unlink()
    try:
        assert predict(d / "run", files) == before
    finally:
        facts.write_text(saved)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    from sklearn.datasets import load_iris

    d = tmp_path_factory.mktemp("csvpredict")
    data = load_iris()
    cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with open(d / "iris.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + ["species"])
        for x, y in zip(data.data, data.target):
            w.writerow([*x, data.target_names[y]])
    (d / "two.nn").write_text(TWO_HEADS)
    assert main(["train", str(d / "two.nn"), "--data", f"csv:{d / 'iris.csv'}", *QUICK, "--out", str(d / "run")]) == 0
    # new rows: other column order, no species column
    with open(d / "new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["petal_width", "petal_length", "sepal_width", "sepal_length"])
        w.writerow([0.2, 1.4, 3.5, 5.1])
        w.writerow([2.3, 5.4, 3.0, 6.2])
    np.save(d / "new.npy", np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 3.0, 5.4, 2.3]], np.float32))
    return d


def test_csv_columns_by_name_and_npy_rows(csv_run, capsys):
    d = csv_run
    model, _, _ = load_run(d / "run")
    facts = json.loads((d / "run" / "data.json").read_text())
    assert facts["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    x = torch.tensor([[5.1, 3.5, 1.4, 0.2], [6.2, 3.0, 5.4, 2.3]])
    x = (x - torch.tensor(facts["normalize"]["mean"])) / torch.tensor(facts["normalize"]["std"])
    with torch.no_grad():
        out = model.eval()(x)
    p = torch.softmax(out["species"], -1)
    from_csv = predict(d / "run", [str(d / "new.csv")])
    from_npy = predict(d / "run", [str(d / "new.npy")])
    assert [r["input"] for r in from_csv] == [f"{d / 'new.csv'}[0]", f"{d / 'new.csv'}[1]"]
    assert [r["input"] for r in from_npy] == [f"{d / 'new.npy'}[0]", f"{d / 'new.npy'}[1]"]
    for i, (a, b) in enumerate(zip(from_csv, from_npy)):
        assert a["heads"] == b["heads"]
        probs = a["heads"]["species"]["probabilities"]
        assert list(probs) == ["setosa", "versicolor", "virginica"]
        torch.testing.assert_close(torch.tensor(list(probs.values())), p[i])
        assert a["heads"]["where"] == {"shape": [2]}  # a head without a task: its shape
    code, out, _ = run(["predict", str(d / "run"), str(d / "new.npy"), "--top", "2"], capsys)
    first = out.splitlines()[0]
    assert first.startswith(f"{d / 'new.npy'}[0]  species: ") and first.endswith("; where: output [2]")


def test_regress_heads_print_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", x[:, :2] * 2)
    (tmp_path / "lin.nn").write_text("model Lin():\n    input x: [B=1, 3]\n    Linear(3, 2)\n    head t: regress\n")
    assert main(["train", str(tmp_path / "lin.nn"), "--data", f"npy:{tmp_path / 'x.npy'},{tmp_path / 't.npy'}",
                 *QUICK, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    np.save(tmp_path / "one.npy", x[0])  # one vector [D]
    [r] = predict(tmp_path / "run", [str(tmp_path / "one.npy")])
    model, _, _ = load_run(tmp_path / "run")
    facts = json.loads((tmp_path / "run" / "data.json").read_text())
    v = (torch.from_numpy(x[:1]) - torch.tensor(facts["normalize"]["mean"])) / torch.tensor(facts["normalize"]["std"])
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(r["heads"]["t"]["values"]), model.eval()(v)[0])


def test_lm_runs_continue_prompts_as_sample_does(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world, " * 400)
    assert main(["train", "gpt2", "--set", "n_layer=1", "n_head=2", "n_embd=16", "block_size=16", "vocab_size=256",
                 "--data", f"text:{tmp_path / 't.txt'}", *QUICK, "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    code, out, err = run(["predict", str(tmp_path / "lm"), "hel", "--tokens", "12", "--seed", "3"], capsys)
    assert code == 0, err
    code, sampled, _ = run(["sample", str(tmp_path / "lm"), "--prompt", "hel", "--tokens", "12", "--seed", "3"],
                           capsys)
    assert out == sampled and out.startswith("hel")
    code, out, _ = run(["predict", str(tmp_path / "lm"), "hel", "wor", "--tokens", "4", "--seed", "3", "--json"],
                       capsys)
    assert [r["input"] for r in json.loads(out)] == ["hel", "wor"]


def test_predict_errors(image_run, csv_run, capsys):
    code, _, err = run(["predict", str(image_run / "run"), str(image_run / "missing.png")], capsys)
    assert code == 1 and err == f"error: input '{image_run / 'missing.png'}' not found\n"
    code, _, err = run(["predict", str(csv_run / "run"), str(image_run / "pics")], capsys)
    assert code == 1 and err == f"error: '{image_run / 'pics'}': Two was trained on vectors; give a .csv or .npy\n"
    (image_run / "notes.txt").write_text("not an image")
    code, _, err = run(["predict", str(image_run / "run"), str(image_run / "notes.txt")], capsys)
    assert code == 1 and err.startswith(f"error: {image_run / 'notes.txt'}: cannot read image (")
    code, _, err = run(["predict", str(image_run / "nowhere"), "x.png"], capsys)
    assert code == 1 and err == f"error: run folder '{image_run / 'nowhere'}' not found\n"
    np.save(csv_run / "wide.npy", np.zeros((2, 5), np.float32))
    code, _, err = run(["predict", str(csv_run / "run"), str(csv_run / "wide.npy")], capsys)
    assert code == 1 and err == f"error: {csv_run / 'wide.npy'}: vectors of 5 values, but Two takes 4\n"
