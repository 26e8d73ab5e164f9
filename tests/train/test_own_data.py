"""Your own data: csv:FILE, npy:X.npy[,Y.npy], and PyTorch Datasets / DataLoaders in
`netspec.train(model, data=...)` -- batches against numpy / torch computed by hand."""
from __future__ import annotations

import csv
import textwrap

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import netspec
from netspec.cli import main
from netspec.train import DataError, RunConfig, TrainError, load_data
from netspec.train.data import split_indices
from netspec.train.data.core import fit_images

IRIS_SPEC = textwrap.dedent("""
    model Iris(features=4, classes=3):
        input x: [B=1, features]
        Linear(features, 16)
        ReLU()
        Linear(16, classes)
        head species: classify
""").lstrip()

REGRESS_SPEC = textwrap.dedent("""
    model Line(k=2):
        input x: [B=1, 3]
        Linear(3, k)
        head out: regress
""").lstrip()

SEGMENT_SPEC = textwrap.dedent("""
    model Seg():
        input x: [B=1, 1, 8, 8]
        Conv2d(1, 3, 3, padding=1)
        head mask: segment
""").lstrip()

DIGITS_SPEC = textwrap.dedent("""
    model Pix():
        input x: [B=1, 1, 8, 8]
        flatten(1)
        Linear(64, 10)
        head logits: classify
""").lstrip()


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    from sklearn.datasets import load_iris

    d = tmp_path_factory.mktemp("iris")
    data = load_iris()
    with open(d / "iris.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for x, y in zip(data.data, data.target):
            w.writerow([*x, data.target_names[y]])
    np.save(d / "X.npy", data.data.astype(np.float32))
    np.save(d / "Y.npy", data.target)
    (d / "iris.nn").write_text(IRIS_SPEC)
    return d, data


def info_of(text: str):
    return netspec.build(text).netspec


# ---------------------------------------------------------------- csv:FILE


def test_csv_batches_are_standardised_features_and_sorted_class_indices(iris):
    d, ref = iris
    data = load_data(f"csv:{d / 'iris.csv'}", info_of(IRIS_SPEC), RunConfig(target="species"))
    assert data.class_names == ["setosa", "versicolor", "virginica"] and data.num_classes == 3
    assert data.features == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert data.targets == ["species"] and data.provides == {"y"} and (len(data.train), len(data.val)) == (120, 30)
    tr, va = split_indices(150, 0.2, 1337)
    x = ref.data.astype(np.float32)
    mean, std = x[tr].mean(0), x[tr].std(0, ddof=1)
    b = data.val.batch(np.arange(len(va)))
    torch.testing.assert_close(b["x"], torch.from_numpy((x[va] - mean) / std))
    assert b["y"].tolist() == ref.target[va].tolist()
    assert data.facts()["normalize"]["mean"] == pytest.approx(mean.tolist())


def test_csv_default_target_and_npy_give_the_same_batches(iris):
    d, _ = iris
    info = info_of(IRIS_SPEC)
    by_name = load_data(str(d / "iris.csv"), info)  # a bare .csv path; the target: the last column
    arrays = load_data(f"npy:{d / 'X.npy'},{d / 'Y.npy'}", info)
    assert by_name.name == str(d / "iris.csv") and arrays.class_names == ["0", "1", "2"]
    for split in ("train", "val"):
        a, b = getattr(by_name, split).batch(np.arange(7)), getattr(arrays, split).batch(np.arange(7))
        torch.testing.assert_close(a["x"], b["x"])
        assert torch.equal(a["y"], b["y"])


def test_csv_numeric_labels_sort_as_numbers(tmp_path):
    f = tmp_path / "n.csv"
    f.write_text("a,b,c,d,label\n" + "".join(f"{i},{i % 3},1,2,{[2, 10, 1][i % 3]}\n" for i in range(12)))
    data = load_data(f"csv:{f}", info_of(IRIS_SPEC))
    assert data.class_names == ["1", "2", "10"]
    b = data.train.batch(np.arange(len(data.train)))
    assert sorted(set(b["y"].tolist())) <= [0, 1, 2]


def test_csv_regression_targets_train(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = np.stack([2 * x[:, 0] - x[:, 1], x[:, 2]], 1)
    f = tmp_path / "r.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "u", "v"])
        w.writerows(np.concatenate([x, y], 1).tolist())
    model = netspec.build(REGRESS_SPEC)
    result = netspec.train(model, {"steps": 300, "lr": 0.05, "target": "u,v", "eval_every": 0}, f"csv:{f}",
                           progress=False)
    assert result.val["loss"] < 0.01
    data = load_data(f"csv:{f}", model.netspec, RunConfig(target="u,v", features="c,a,b"))
    assert data.target_dim == 2 and data.features == ["c", "a", "b"] and data.provides == {"target"}


@pytest.mark.parametrize("text,cfg,message", [
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,oops,4,y\n", {}, "{f}:3: column 'c' holds 'oops', not a number"),
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,,4,y\n", {}, "{f}:3: column 'c' holds an empty cell, not a number"),
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,3,4\n", {}, "{f}:3: 4 values, but the header names 5 columns"),
    ("a,b,c,d,label\n1,2,3,4,x\n", {}, "{f}: needs a header row and at least 2 rows of data, got 1"),
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,3,4,\n", {}, "{f}:3: column 'label' has an empty label"),
    ("a,b,c,label\n1,2,3,x\n1,2,3,y\n", {}, "data 'csv:{f}' has 3 feature columns per sample, but input 'x' of "
                                            "Iris takes [B, 4]"),
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,3,4,y\n", {"target": "lable"},
     "{f}: no target column 'lable' (did you mean 'label'?); columns: a, b, c, d, label"),
    ("a,b,c,d,label\n1,2,3,4,x\n1,2,3,4,y\n", {"features": "a,b,c,label"},
     "{f}: column 'label' cannot be both a feature and the target"),
    ("a,a,c,d,label\n1,2,3,4,x\n1,2,3,4,y\n", {}, "{f}: the header row must name every column once, got a, a, c, "
                                                  "d, label"),
])
def test_csv_errors_name_the_row_and_column(tmp_path, text, cfg, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(DataError) as e:
        load_data(f"csv:{f}", info_of(IRIS_SPEC), RunConfig(**cfg))
    assert str(e.value) == message.format(f=f)


def test_csv_from_the_command_line(iris, capsys):
    d, _ = iris
    code = main(["train", str(d / "iris.nn"), "--data", f"csv:{d / 'iris.csv'}", "--target", "species",
                 "--steps", "150", "--out", str(d / "run")])
    out = capsys.readouterr().out
    assert code == 0 and f"csv:{d / 'iris.csv'}: 120 train / 30 val samples, 3 classes" in out
    assert main(["eval", str(d / "run"), "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out


# ---------------------------------------------------------------- npy:X.npy[,Y.npy]


def test_npy_images_are_normalised_like_every_image_source(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(50, 8, 8), dtype=np.uint8)  # [N, H, W] grey pixels
    y = rng.integers(0, 10, size=50)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model = netspec.build(DIGITS_SPEC)
    data = load_data(f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}", model.netspec, RunConfig(augment=False))
    tr, va = split_indices(50, 0.2, 1337)
    raw = torch.from_numpy(x[tr]).float()[:, None] / 255
    mean, std = float(raw.mean()), float(raw.std())
    assert data.norm == pytest.approx({"mean": mean, "std": std, "scale": 1 / 255})
    b = data.val.batch(np.arange(len(va)))
    want = fit_images(torch.from_numpy(x[va]).float()[:, None] / 255, data.want, mean, std)
    torch.testing.assert_close(b["x"], want)
    assert b["y"].tolist() == y[va].tolist() and data.facts()["inputs"] == "images"


def test_npy_masks_and_regression_targets(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((20, 1, 8, 8)).astype(np.float32)
    masks = rng.integers(0, 3, size=(20, 8, 8))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", masks)
    data = load_data(f"npy:{tmp_path / 'x.npy'},{tmp_path / 'm.npy'}", info_of(SEGMENT_SPEC))
    assert data.provides == {"mask"} and data.num_classes == 3
    assert torch.equal(data.train.batch(np.arange(3))["mask"], torch.from_numpy(masks[data.train.idx[:3]]))
    t = rng.normal(size=(30,)).astype(np.float32)
    np.save(tmp_path / "x3.npy", rng.normal(size=(30, 3)).astype(np.float32))
    np.save(tmp_path / "t.npy", t)
    data = load_data(f"npy:{tmp_path / 'x3.npy'},{tmp_path / 't.npy'}", info_of(REGRESS_SPEC.replace("k=2", "k=1")))
    assert data.target_dim == 1 and data.train.batch(np.arange(2))["target"].shape == (2, 1)


def test_npy_errors(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object))
    np.save(tmp_path / "x.npy", np.zeros((10, 4), np.float32))
    np.save(tmp_path / "y9.npy", np.zeros(9, np.int64))
    np.save(tmp_path / "yf.npy", np.zeros(10, np.float32))
    info = info_of(IRIS_SPEC)
    cases = {
        f"npy:{tmp_path / 'obj.npy'}": f"{tmp_path / 'obj.npy'}: not a NumPy array file of numbers (Object arrays "
                                       "cannot be loaded when allow_pickle=False)",
        f"npy:{tmp_path / 'x.npy'}": f"data 'npy:{tmp_path / 'x.npy'}' has no Y.npy, but the heads of Iris need "
                                     "labels: write npy:X.npy,Y.npy",
        f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y9.npy'}": f"data 'npy:{tmp_path / 'x.npy'},{tmp_path / 'y9.npy'}': "
                                                           f"X has 10 samples but {tmp_path / 'y9.npy'} has 9",
        f"npy:{tmp_path / 'x.npy'},{tmp_path / 'yf.npy'}": f"{tmp_path / 'yf.npy'}: labels must be integers, "
                                                           "got float32",
        "npy:": "data 'npy:' needs a path, e.g. npy:X.npy,Y.npy",
    }
    for source, message in cases.items():
        with pytest.raises(DataError) as e:
            load_data(source, info)
        assert str(e.value) == message


# ---------------------------------------------------------------- PyTorch Datasets and DataLoaders


class DictDigits(Dataset):
    """Items as dicts, with torchvision's `classes` attribute."""

    classes = [f"digit {i}" for i in range(10)]

    def __init__(self, n=200):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def test_netspec_train_is_the_package_and_a_function(iris):
    import netspec.train.trainer  # noqa: F401 - the subpackage still imports as a package

    d, ref = iris
    assert netspec.train.RunConfig is RunConfig and callable(netspec.train)
    x = torch.tensor(ref.data, dtype=torch.float32)
    ds = TensorDataset((x - x.mean(0)) / x.std(0), torch.tensor(ref.target))
    torch.manual_seed(0)
    result = netspec.train(netspec.build(IRIS_SPEC), data=ds, cfg={"steps": 200, "eval_every": 0}, progress=False)
    assert result.step == 200 and result.val["accuracy"] > 0.8


def test_dataset_items_as_dicts_with_class_names(tmp_path):
    model = netspec.build(DIGITS_SPEC)
    result = netspec.train(model, {"steps": 4, "batch_size": 16}, DictDigits(), tmp_path / "run", progress=False)
    assert result.step == 4 and set(result.val) >= {"loss", "accuracy"}
    facts = (tmp_path / "run" / "data.json").read_text()
    assert '"source": "<DictDigits>"' in facts and '"digit 9"' in facts


def test_dataset_runs_resume_exactly(tmp_path):
    ds = DictDigits()
    cfg = RunConfig(steps=6, batch_size=16, eval_every=0, save_every=0)
    spec = tmp_path / "pix.nn"
    spec.write_text(DIGITS_SPEC)
    torch.manual_seed(0)
    one = netspec.build(spec)
    netspec.train(one, cfg, ds, tmp_path / "one", progress=False)
    torch.manual_seed(0)
    two = netspec.build(spec)
    netspec.train(two, cfg, ds, tmp_path / "two", progress=False, stop_after=3)
    again, _, _ = netspec.train.load_run(tmp_path / "two", weights=False)
    netspec.train(again, cfg, ds, tmp_path / "two", resume=True, progress=False)
    for (k, a), (_, b) in zip(one.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_dataloaders_train_with_or_without_validation(iris):
    d, ref = iris
    ds = TensorDataset(torch.tensor(ref.data, dtype=torch.float32), torch.tensor(ref.target))
    loader = DataLoader(ds, batch_size=10, shuffle=False)
    seen = []
    result = netspec.train(netspec.build(IRIS_SPEC), {"epochs": 2}, loader, progress=False,
                           on_step=lambda step, row: seen.append(step))
    assert result.total_steps == 30 and seen == list(range(1, 31)) and result.val == {}
    result = netspec.train(netspec.build(IRIS_SPEC), {"steps": 3}, loader, val=DataLoader(ds, batch_size=50),
                           progress=False)
    assert set(result.val) >= {"loss", "accuracy"}


def test_torch_data_errors(iris):
    d, ref = iris
    model = netspec.build(IRIS_SPEC)
    with pytest.raises(TrainError) as e:
        netspec.train(model, {"steps": 1}, "digits", val=TensorDataset(torch.zeros(2, 4)), progress=False)
    assert str(e.value) == "val= goes with PyTorch data (a Dataset or DataLoader as data=)"
    with pytest.raises(DataError) as e:
        netspec.train(model, {"steps": 1}, TensorDataset(torch.zeros(4, 4)), progress=False)
    assert str(e.value) == "data '<TensorDataset>' has no class labels, but head 'species' of Iris is a classify head"

    class Strings(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return "text"

    with pytest.raises(DataError) as e:
        netspec.train(model, {"steps": 1}, Strings(), progress=False)
    assert str(e.value) == "<Strings>: an item must be a tensor x, a pair (x, target) or a dict, got str"
    with pytest.raises(DataError) as e:
        load_data("<TensorDataset>", model.netspec)
    assert str(e.value).startswith("data '<TensorDataset>' was a PyTorch dataset given in Python: pass it again")
