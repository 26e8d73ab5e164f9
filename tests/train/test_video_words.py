"""Two built-in sources: `moving` (video clips of a shape moving in one of K directions) and
`pywords` (skip-gram pairs from the words of the standard library's documentation), with the
video classifiers of specs/video.nn trained on the first at a tiny size.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import netspec
from netspec.compiler.info import HeadInfo, InputInfo, ModelInfo
from netspec.train.config import RunConfig
from netspec.train.data import DataError, load_data
from netspec.train.data import words as W
from netspec.train.data.moving import clip
from netspec.train.data.core import seeded_rng
from netspec.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
VIDEO = str(REPO / "specs" / "video.nn")


def video_info(classes=4, c=1, t=6, h=24, w=24):
    return ModelInfo("Vid", "<t>", {}, (InputInfo("clip", "float32", ("B", c, t, h, w), (2, c, t, h, w)),),
                     (HeadInfo("logits", "classify", shape=(2, classes)),))


def centroid(frame: np.ndarray) -> tuple[float, float]:
    m = frame > 0.45  # the shape is brighter than any background
    yy, xx = np.nonzero(m)
    return xx.mean(), yy.mean()


@pytest.mark.parametrize("k", range(8))
def test_a_clip_moves_its_shape_in_its_direction(k):
    rng = seeded_rng(0, k)
    c = clip(rng, 8, 32, 32, 1, k, 8)  # [1, 8, 32, 32]
    assert c.shape == (1, 8, 32, 32) and 0 <= c.min() and c.max() <= 1
    (x0, y0), (x1, y1) = centroid(c[0, 0]), centroid(c[0, -1])
    angle = math.degrees(math.atan2(-(y1 - y0), x1 - x0)) % 360  # image y grows downwards
    assert min(abs(angle - 45 * k), 360 - abs(angle - 45 * k)) < 10
    assert math.hypot(x1 - x0, y1 - y0) > 0.25 * 32  # it travels, and stays in view
    for t in range(8):
        assert (c[0, t] > 0.45).any()


def test_moving_data_follows_the_head_and_is_pure():
    data = load_data("moving", video_info(classes=4))
    assert data.num_classes == 4 and data.class_names == ["0deg", "90deg", "180deg", "270deg"]
    b = data.train.batch(np.arange(6), 0)
    assert b["x"].shape == (6, 1, 6, 24, 24) and b["y"].shape == (6,)
    assert torch.equal(b["x"], data.train.batch(np.arange(6), 0)["x"])
    assert not torch.equal(b["x"], data.train.batch(np.arange(6), 1)["x"])  # fresh clips every epoch
    assert torch.equal(data.val.batch(np.arange(6), 0)["x"], data.val.batch(np.arange(6), 5)["x"])
    assert abs(float(data.train.batch(np.arange(64))["x"].mean())) < 0.2  # standardized
    assert load_data("moving:2", video_info(classes=2)).num_classes == 2


def test_moving_data_errors():
    with pytest.raises(DataError) as e:
        load_data("moving", video_info(classes=9))
    assert str(e.value) == "data 'moving' has 2 to 8 directions, but the head of Vid asks for 9"
    with pytest.raises(DataError) as e:
        load_data("moving", video_info(t=1))
    assert str(e.value) == ("data 'moving' needs clips of at least 2 frames to show motion, but input 'clip' of "
                            "Vid takes 1")
    with pytest.raises(DataError) as e:
        load_data("digits", video_info())
    assert str(e.value) == "data 'digits' is images but input 'clip' of Vid takes video clips [B, 1, 6, 24, 24]"


@pytest.mark.parametrize("model", ["Conv3dClassifier", "R2Plus1dClassifier"])
def test_video_classifiers_train_on_moving_clips(tmp_path, model):
    m = netspec.build(VIDEO, model, width=4, input_shapes={"clip": (1, 1, 4, 16, 16)})
    r = train(m, RunConfig(steps=2, batch_size=4, eval_batches=1, warmup_steps=0), None, tmp_path / "run",
              progress=False)
    assert r.step == 2 and r.val["accuracy"] >= 0 and (tmp_path / "run" / "model.safetensors").is_file()
    assert "moving" == (tmp_path / "run" / "config.yaml").read_text().split("data: ")[1].split()[0]


# --------------------------------------------------------------------------
# pywords


def test_corpus_reads_comments_docstrings_and_topics(tmp_path):
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "pydoc_data").mkdir()
    (root / "site-packages").mkdir()
    (root / "pkg" / "a.py").write_text('"""The Alpha module.\\n\\nSee sys_path."""\nx = "not words"  # Beta gamma\n')
    (root / "site-packages" / "b.py").write_text("# skipped entirely\n")
    (root / "pydoc_data" / "topics.py").write_text("topics = {'x': 'Delta\\nepsilon'}\n")
    W.corpus.cache_clear()
    try:
        words = W.corpus(str(root))
    finally:
        W.corpus.cache_clear()
    assert list(words) == ["the", "alpha", "module", "see", "sys_path", "beta", "gamma", "delta", "epsilon"]


def test_vocabulary_and_subsampling():
    vocab, counts = W.vocabulary(["b", "a", "b", "c", "a", "b", "d"], 3)
    assert vocab == ["b", "a", "c"] and counts.tolist() == [3, 2, 1]  # ties: first seen first
    ids = np.array([0] * 9000 + [1] * 900 + [2] * 100)
    kept = W.subsample(ids, np.array([9000, 900, 100]), seed=0, t=1e-2)
    n = np.bincount(kept, minlength=3)
    assert n[2] == 100  # rare words all stay (f = t: kept with probability 2, so always)
    f0 = 0.9
    p0 = math.sqrt(1e-2 / f0) + 1e-2 / f0
    assert abs(n[0] / 9000 - p0) < 0.02  # frequent ones at sqrt(t/f) + t/f


def test_skipgram_pairs_stay_within_the_window():
    split = W.PairSplit(np.arange(100), seed=3, fixed_epoch=None, window=5)
    o = split.offsets(0)
    assert (o != 0).all() and (np.abs(o) <= 5).all()
    assert ((np.arange(100) + o >= 0) & (np.arange(100) + o < 100)).all()
    b = split.batch(np.array([0, 50, 99]), 0)
    assert b["x"].tolist() == [0, 50, 99] and (b["y"] - b["x"]).abs().max() <= 5
    assert torch.equal(b["y"], split.batch(np.array([0, 50, 99]), 0)["y"])
    assert not np.array_equal(o, split.offsets(1))  # a new draw each epoch
    # the dynamic window: near words are drawn more often than far ones
    counts = np.bincount(np.abs(W.PairSplit(np.arange(20000), 0, None).offsets(0)), minlength=6)
    assert counts[1] > counts[3] > counts[5] > 0


def test_pywords_vocabulary_follows_the_head():
    info = ModelInfo("SG", "<t>", {}, (InputInfo("word", "int64", ("B",), (4,)),),
                     (HeadInfo("context", "classify", shape=(4, 1000)),))
    data = load_data("pywords", info)
    assert data.kind == "ids" and data.num_classes == 1000 and len(data.class_names) == 1000
    assert data.class_names[:4] == ["the", "a", "to", "is"]
    assert data.counts[0] >= data.counts[1] >= data.counts[-1] >= 1
    b = data.train.batch(np.arange(8))
    assert b["x"].shape == b["y"].shape == (8,) and int(b["x"].max()) < 1000
    assert len(data.val) < len(data.train) / 5
    too_big = ModelInfo("SG", "<t>", {}, info.inputs, (HeadInfo("context", "classify", shape=(4, 10 ** 6)),))
    with pytest.raises(DataError, match=r"data 'pywords' has \d+ distinct words, but head of SG outputs 1000000"):
        load_data("pywords", too_big)


def test_every_source_is_listed_and_defaults_follow_the_inputs():
    from netspec.train.cli import EPILOG_TRAIN
    from netspec.train.data import SOURCES, default_source, want_from_info

    for name in SOURCES:
        assert name in EPILOG_TRAIN, name
    ids = ModelInfo("SG", "<t>", {}, (InputInfo("w", "int64", ("B",), (4,)),),
                    (HeadInfo("c", "classify", shape=(4, 50)),))
    two = ModelInfo("S2S", "<t>", {}, (InputInfo("s", "int64", ("B", "S"), (2, 8)),
                                       InputInfo("t", "int64", ("B", "T"), (2, 6))),
                    (HeadInfo("y", "seq2seq", target="t", shape=(2, 6, 20)),))
    assert [default_source(want_from_info(i)) for i in (ids, two, video_info())] == \
        ["pywords", "seq2seq:reverse", "moving"]
