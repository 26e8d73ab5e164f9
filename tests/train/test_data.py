"""Tests of compiler.data: sources, splits, resumable loaders and the model/data checks.

User data formats (MNIST idx, CIFAR-10 pickles, image folders, text) are
generated tiny in tmp_path; built-in sources are loaded for real.
"""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from netspec.train.data import (DataError, Loader, check_model, eval_batches, load_data, parse_source,
                                split_indices, want_from_info)
from netspec.train.data.core import Want
from netspec.train.data.figures import KINDS
from netspec.compiler.info import HeadInfo, InputInfo, ModelInfo
from netspec.train.config import RunConfig
from tests.train.fixtures import make


def info_img(c=1, h=16, w=16, heads=None, name="Net"):
    heads = heads or [HeadInfo("logits", "classify", shape=(2, 10))]
    return ModelInfo(name, "<test>", {}, (InputInfo("x", "float32", ("B", c, h, w), (2, c, h, w)),), tuple(heads))


def info_lm(T=16, V=256, name="LM", params=None, dims=("B", "T")):
    return ModelInfo(name, "<test>", params or {}, (InputInfo("idx", "int64", dims, (2, T)),),
                     (HeadInfo("logits", "lm", shape=(2, T, V)),))


# --------------------------------------------------------------------------
# splits and loaders


def test_split_is_deterministic_disjoint_and_complete():
    tr, va = split_indices(100, 0.2, seed=7)
    tr2, va2 = split_indices(100, 0.2, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 20 and len(tr) == 80
    assert set(tr).isdisjoint(va) and set(tr) | set(va) == set(range(100))
    _, va3 = split_indices(100, 0.2, seed=8)
    assert not np.array_equal(va, va3)


class IdSplit:
    """A split whose batch is its indices (plus the epoch), to watch the loader."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def batch(self, idx, epoch=0):
        return {"x": torch.as_tensor(np.asarray(idx)), "epoch": torch.tensor(epoch)}


def test_loader_same_seed_same_order_and_epochs_reshuffle():
    a, b = Loader(IdSplit(10), 3, seed=1), Loader(IdSplit(10), 3, seed=1)
    seq_a = [a.next()["x"].tolist() for _ in range(6)]
    seq_b = [b.next()["x"].tolist() for _ in range(6)]
    assert seq_a == seq_b
    assert a.batches_per_epoch == 3  # the short last batch (10 = 3*3 + 1) is dropped
    assert all(len(s) == 3 for s in seq_a)
    assert sorted(sum(seq_a[:3], [])) != sorted(sum(seq_a[3:], [])) or seq_a[:3] != seq_a[3:]
    assert len(set(sum(seq_a[:3], []))) == 9  # no repeats within an epoch
    assert Loader(IdSplit(10), 3, seed=2).next()["x"].tolist() != seq_a[0]


def test_loader_resumes_exactly_mid_epoch_and_across_epochs():
    full = Loader(IdSplit(11), 4, seed=3)
    ref = [full.next() for _ in range(7)]
    part = Loader(IdSplit(11), 4, seed=3)
    for _ in range(4):
        part.next()
    state = part.state_dict()
    assert state == {"epoch": 2, "offset": 0}
    again = Loader(IdSplit(11), 4, seed=3)
    again.load_state_dict(state)
    rest = [again.next() for _ in range(3)]
    for r, g in zip(ref[4:], rest):
        assert torch.equal(r["x"], g["x"]) and int(r["epoch"]) == int(g["epoch"])


def test_loader_shards_ranks_disjointly_with_equal_step_counts():
    r0, r1 = Loader(IdSplit(16), 4, seed=0, rank=0, world=2), Loader(IdSplit(16), 4, seed=0, rank=1, world=2)
    assert r0.batches_per_epoch == r1.batches_per_epoch == 2
    seen0 = sum((r0.next()["x"].tolist() for _ in range(2)), [])
    seen1 = sum((r1.next()["x"].tolist() for _ in range(2)), [])
    assert set(seen0).isdisjoint(seen1) and set(seen0) | set(seen1) == set(range(16))
    # an odd size is padded like DistributedSampler: every rank still gets a full batch
    odd0, odd1 = Loader(IdSplit(9), 5, seed=0, rank=0, world=2), Loader(IdSplit(9), 5, seed=0, rank=1, world=2)
    assert len(odd0.next()["x"]) == len(odd1.next()["x"]) == 5


def test_loader_with_workers_gives_the_same_batches():
    a = Loader(IdSplit(20), 4, seed=5)
    b = Loader(IdSplit(20), 4, seed=5, num_workers=1)
    for _ in range(7):
        assert torch.equal(a.next()["x"], b.next()["x"])
    assert a.state_dict() == b.state_dict()


def test_eval_batches_cover_the_split_or_a_fixed_subset():
    got = torch.cat([b["x"] for b in eval_batches(IdSplit(10), 4)])
    assert got.tolist() == list(range(10))
    capped = [b["x"].tolist() for b in eval_batches(IdSplit(100), 4, max_batches=2, seed=1)]
    assert capped == [b["x"].tolist() for b in eval_batches(IdSplit(100), 4, max_batches=2, seed=1)]
    assert sum(len(c) for c in capped) == 8


# --------------------------------------------------------------------------
# built-in sources


def test_digits_fit_the_model_input_and_are_normalised():
    data = load_data("digits", info_img(1, 32, 32), RunConfig(seed=0))
    assert (len(data.train), len(data.val)) == (1438, 359) and data.num_classes == 10
    b = data.train.batch(np.arange(64))
    assert b["x"].shape == (64, 1, 32, 32) and b["x"].dtype == torch.float32
    assert b["y"].shape == (64,) and b["y"].dtype == torch.int64 and int(b["y"].max()) <= 9
    allx = data.train.batch(np.arange(len(data.train)))["x"]
    # stats come from native 8x8 pixels; upsampling smooths, so std is a little under 1
    assert abs(float(allx.mean())) < 0.1 and 0.75 < float(allx.std()) < 1.1
    # three channels: the grey image repeated
    rgb = load_data("digits", info_img(3, 16, 16), RunConfig(seed=0)).train.batch(np.arange(2))["x"]
    assert rgb.shape == (2, 3, 16, 16) and torch.equal(rgb[:, 0], rgb[:, 2])


def test_digits_flat_input_at_native_size():
    m = make("mlp")
    data = load_data("digits", m.netspec)
    assert data.train.batch(np.arange(5))["x"].shape == (5, 64)


def test_shapes_deterministic_labels_and_masks():
    seg = info_img(3, 24, 24, [HeadInfo("mask", "segment", shape=(2, 4, 24, 24))])
    d1 = load_data("shapes", seg, RunConfig(seed=3))
    d2 = load_data("shapes", seg, RunConfig(seed=3))
    b1, b2 = d1.val.batch(np.arange(8)), d2.val.batch(np.arange(8))
    assert torch.equal(b1["x"], b2["x"]) and torch.equal(b1["mask"], b2["mask"])
    assert d1.num_classes == 4 and d1.class_names == ["background", "circle", "square", "triangle"]
    assert b1["mask"].shape == (8, 24, 24) and set(b1["mask"].unique().tolist()) <= {0, 1, 2, 3}
    assert (b1["mask"] > 0).any() and (b1["mask"] == 0).any()
    # training images are fresh each epoch, validation ones are fixed
    assert not torch.equal(d1.train.batch(np.arange(4), 0)["x"], d1.train.batch(np.arange(4), 1)["x"])
    assert not torch.equal(load_data("shapes", seg, RunConfig(seed=4)).val.batch(np.arange(8))["x"], b1["x"])
    cls = load_data("shapes", info_img(1, 16, 16, [HeadInfo("logits", "classify", shape=(2, 6))]))
    y = cls.train.batch(np.arange(200))["y"]
    assert cls.num_classes == 6 and set(y.tolist()) == set(range(6))
    assert cls.train.batch(np.arange(2))["x"].shape == (2, 1, 16, 16)


def test_shapes_class_count_limits():
    with pytest.raises(DataError, match=rf"has 2 to {len(KINDS)} shape kinds .* asks for 10"):
        load_data("shapes", info_img(3, 16, 16, [HeadInfo("logits", "classify", shape=(2, 10))]))
    with pytest.raises(DataError, match="has 3 classes but head 'logits' of Net outputs 5"):
        load_data("shapes:3", info_img(3, 16, 16, [HeadInfo("logits", "classify", shape=(2, 5))]))


def test_pycode_sequences_from_block_size():
    info = info_lm(T=8, params={"block_size": 24}, dims=("B", "T"))
    data = load_data("pycode", info, RunConfig(seed=0))
    assert data.want.seq_len == 24 and data.vocab_size == 256
    b = data.train.batch(np.arange(3), epoch=0)["x"]
    assert b.shape == (3, 24) and b.dtype == torch.int64
    text = data.decode(b[0].tolist())
    assert len(text) > 0
    # windows are contiguous source bytes; val is the contiguous tail of the stream
    tr, va = data.train.tokens, data.val.tokens
    assert len(va) >= 0.09 * (len(tr) + len(va))
    assert data.train.batch(np.arange(3), 0)["x"].tolist() == b.tolist()
    assert data.train.batch(np.arange(3), 1)["x"].tolist() != b.tolist()  # the phase moves each epoch
    assert load_data("pycode", info, RunConfig(seq_len=16)).want.seq_len == 16


def test_default_sources_follow_the_heads():
    assert load_data(None, info_lm(T=8)).name == "pycode"
    assert load_data(None, info_img(1, 8, 8)).name == "digits"
    seg = info_img(3, 16, 16, [HeadInfo("m", "segment", shape=(2, 3, 16, 16))])
    assert load_data(None, seg).name == "shapes"


# --------------------------------------------------------------------------
# user data


def _idx(path, arr: np.ndarray, gz=False):
    code = {np.uint8: 0x08}[arr.dtype.type]
    raw = struct.pack(">BBBB", 0, 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_mnist_idx_with_test_files(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labs = (np.arange(30) % 10).astype(np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, gz=True)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", labs, gz=True)
    _idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:12])
    _idx(tmp_path / "t10k-labels-idx1-ubyte", labs[:12])
    data = load_data(f"mnist:{tmp_path}", info_img(1, 32, 32))
    assert (len(data.train), len(data.val), data.num_classes) == (30, 12, 10)
    b = data.val.batch(np.arange(12))
    assert b["x"].shape == (12, 1, 32, 32) and b["y"].tolist() == labs[:12].tolist()
    # a bare path is recognised
    assert parse_source(str(tmp_path)) == ("mnist", str(tmp_path))
    flat = load_data(str(tmp_path), make("mlp", d_in=784).netspec)
    assert flat.train.batch(np.arange(2))["x"].shape == (2, 784)


def test_mnist_without_test_files_is_split(tmp_path):
    imgs = np.zeros((20, 28, 28), np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte", imgs)
    _idx(tmp_path / "train-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8))
    data = load_data(f"mnist:{tmp_path}", info_img(1, 28, 28), RunConfig(val_fraction=0.25))
    assert (len(data.train), len(data.val)) == (15, 5)


def test_mnist_errors(tmp_path):
    with pytest.raises(DataError, match="no MNIST train-images"):
        load_data(f"mnist:{tmp_path}", info_img())
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="not an idx file"):
        load_data(f"mnist:{tmp_path}", info_img())


def test_cifar10_pickles(tmp_path):
    rng = np.random.default_rng(0)
    for i in (1, 2):
        batch = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3, 4, 5]}
        pickle.dump(batch, open(tmp_path / f"data_batch_{i}", "wb"))
    pickle.dump({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [9, 8, 7, 6]},
                open(tmp_path / "test_batch", "wb"))
    pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, open(tmp_path / "batches.meta", "wb"))
    data = load_data(str(tmp_path), info_img(3, 32, 32))
    assert data.name == str(tmp_path) and data.class_names[:2] == ["c0", "c1"]
    assert (len(data.train), len(data.val), data.num_classes) == (12, 4, 10)
    b = data.val.batch(np.arange(4))
    assert b["x"].shape == (4, 3, 32, 32) and b["y"].tolist() == [9, 8, 7, 6]
    grey = load_data(f"cifar10:{tmp_path}", info_img(1, 16, 16)).train.batch(np.arange(3))["x"]
    assert grey.shape == (3, 1, 16, 16)


def test_image_folder(tmp_path):
    from PIL import Image

    for c, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.new("RGB", (20 + i, 12), color).save(tmp_path / c / f"{i}.png")
    data = load_data(f"images:{tmp_path}", info_img(3, 8, 8, [HeadInfo("logits", "classify", shape=(2, 2))]),
                     RunConfig(val_fraction=0.2))
    assert data.class_names == ["cat", "dog"] and (len(data.train), len(data.val)) == (8, 2)
    b = data.train.batch(np.arange(8))
    assert b["x"].shape == (8, 3, 8, 8)
    red = b["x"][b["y"] == 0]
    assert (red[:, 0] > red[:, 2]).all()  # colour survives the load
    with pytest.raises(DataError, match="has 2 classes but head 'logits' of Net outputs 10"):
        load_data(f"images:{tmp_path}", info_img(3, 8, 8))


def test_text_bytes_and_char_vocab(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("héllo wörld, " * 40)
    data = load_data(f"text:{p}", info_lm(T=8))
    assert data.vocab is None and data.vocab_size == 256
    assert data.decode(data.encode("héllo")) == "héllo"
    char = load_data(f"text:{p}", info_lm(T=8), RunConfig(vocab="char"))
    assert char.vocab == sorted(set("héllo wörld, ")) and char.vocab_size == len(char.vocab)
    x = char.train.batch(np.arange(2))["x"]
    assert x.shape == (2, 8) and int(x.max()) < char.vocab_size
    assert char.decode(char.encode("wörld")) == "wörld"
    assert parse_source(str(p)) == ("text", str(p))
    short = tmp_path / "s.txt"
    short.write_text("abc")
    with pytest.raises(DataError, match="too few for sequences of 8"):
        load_data(f"text:{short}", info_lm(T=8))


# --------------------------------------------------------------------------
# mismatches


def test_class_count_mismatch_names_data_head_and_model():
    with pytest.raises(DataError) as e:
        load_data("digits", make("lenet", classes=12).netspec)
    assert str(e.value) == "data 'digits' has 10 classes but head 'logits' of LeNet5 outputs 12"


def test_class_count_probed_when_the_info_has_no_shape():
    m = make("conv", classes=7, head_shape=False)
    with pytest.raises(DataError, match="data 'digits' has 10 classes but head 'logits' of TinyConv outputs 7"):
        load_data("digits", m.netspec, model=m)


def test_wrong_kinds_of_data():
    with pytest.raises(DataError, match="data 'pycode' is text .* input 'x' of LeNet5 takes images"):
        load_data("pycode", make("lenet").netspec)
    with pytest.raises(DataError, match="data 'digits' is images but input 'idx' of LM takes token ids"):
        load_data("digits", info_lm())
    with pytest.raises(DataError, match="no segmentation masks, but head 'mask' of Net is a segment head"):
        load_data("digits", info_img(1, 16, 16, [HeadInfo("mask", "segment", shape=(2, 11, 16, 16))]))
    with pytest.raises(DataError, match="vocabulary of 256 but head 'logits' of LM outputs 100"):
        load_data("pycode", info_lm(V=100))
    with pytest.raises(DataError, match="neither a known source"):
        load_data("mnits", info_img())
    with pytest.raises(DataError, match="needs a path"):
        parse_source("mnist:")


def test_check_model_runs_the_model_on_real_data():
    m = make("conv")
    data = load_data("digits", m.netspec)
    check_model(m, data, m.netspec)  # fits
    bad = make("conv", classes=3, head_shape=False)
    with pytest.raises(DataError, match="data 'digits' has 10 classes but head 'logits' of TinyConv outputs 3"):
        check_model(bad, data, bad.netspec)


def test_a_source_feeds_as_many_inputs_as_the_model_takes():
    info = ModelInfo("Two", "<t>", {}, (InputInfo("a", "float32", ("B", 4), (1, 4)),
                                        InputInfo("b", "float32", ("B", 4), (1, 4))),
                     (HeadInfo("y", "regress"),))
    with pytest.raises(DataError) as e:
        load_data("shapes", info)
    assert str(e.value) == "data 'shapes' feeds 1 input but Two takes 2 (a, b)"
    want = want_from_info(info)
    assert (want.arity, want.input, want.rest[0].input, want.rest[0].flat_dim) == (2, "a", "b", 4)
    assert Want(model="m", input="x", kind="image").needs == frozenset()


def test_augmented_training_images_shift_per_epoch_but_validation_does_not():
    info = info_img(1, 8, 8)
    data = load_data("digits", info, RunConfig(seed=0, augment=True))
    plain = load_data("digits", info, RunConfig(seed=0, augment=False))
    idx = np.arange(16)
    e0, e0b, e1 = data.train.batch(idx, 0)["x"], data.train.batch(idx, 0)["x"], data.train.batch(idx, 1)["x"]
    assert torch.equal(e0, e0b) and not torch.equal(e0, e1)  # a pure function of (seed, epoch, sample)
    assert not torch.equal(e0, plain.train.batch(idx, 0)["x"])
    assert torch.equal(plain.train.batch(idx, 0)["x"], plain.train.batch(idx, 1)["x"])
    assert torch.equal(data.val.batch(idx)["x"], plain.val.batch(idx)["x"])
    # a shift moves pixels, it does not change them: every shifted row is a row of the original
    from netspec.train.data.images import shift_images

    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert shift_images(x, np.array([[1, 0]]))[0, 0].tolist() == [[0] * 4, [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert shift_images(x, np.array([[0, -1]]))[0, 0, 0].tolist() == [1, 2, 3, 0]
