"""Every data reader validates before it trusts: CIFAR pickles are read without running code,
idx headers are checked against their files, image sizes against a pixel cap, text against
its encoding, labels against their range -- each a one-line DataError naming the file, the
data source and the spec input it feeds."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib

import numpy as np
import pytest

from netspec.cli import main as netspec_main
from netspec.train.config import RunConfig
from netspec.train.data import DataError, load_data, parse_source
from netspec.train.data.core import MAX_PIXELS
from tests.train.test_data import info_img, info_lm

def where(source: str) -> str:
    return f"(data '{source}' for input 'x' of Net)"


# --------------------------------------------------------------------------
# CIFAR: no code runs


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _batch(path, n=4, protocol=pickle.DEFAULT_PROTOCOL, extra=None):
    rng = np.random.default_rng(0)
    b = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n)), **(extra or {})}
    pickle.dump(b, open(path, "wb"), protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(tmp_path, protocol):
    # protocol 2 is the original files' (numpy arrays via _reconstruct, bytes via _codecs.encode)
    _batch(tmp_path / "data_batch_1", protocol=protocol, extra={b"batch_label": b"training batch 1 of 5",
                                                                b"filenames": [b"a.png", b"b.png"]})
    _batch(tmp_path / "test_batch", n=2, protocol=protocol)
    pickle.dump({b"label_names": [b"plane", b"car", b"bird", b"cat"], b"num_vis": np.int64(3072)},
                open(tmp_path / "batches.meta", "wb"), protocol=protocol)
    data = load_data(f"cifar10:{tmp_path}", info_img(3, 32, 32, heads=[_head(4)]))
    assert (len(data.train), len(data.val), data.class_names) == (4, 2, ["plane", "car", "bird", "cat"])


def _head(classes):
    from netspec.compiler.info import HeadInfo

    return HeadInfo("logits", "classify", shape=(2, classes))


def test_a_cifar_payload_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar"
    folder.mkdir()
    pickle.dump({b"data": Payload(marker), b"labels": [0]}, open(folder / "data_batch_1", "wb"))
    assert parse_source(str(folder)) == ("cifar10", str(folder))  # a bare folder is detected as CIFAR...
    with pytest.raises(DataError) as e:
        load_data(str(folder), info_img(3, 32, 32))
    assert str(e.value) == (f"{folder / 'data_batch_1'}: refused as a CIFAR-10 python batch: it refers to "
                            f"'{os.system.__module__}.system', which CIFAR batches never do (only dicts, lists, "
                            f"bytes, str, numbers and numpy arrays are read) {where(str(folder))}")
    assert not marker.exists()  # ...and read without running anything
    # the same on the command line, where `--data ./folder` once unpickled silently
    spec = tmp_path / "c.nn"
    spec.write_text("model C():\n    input x: float[B=2, 3, 32, 32]\n    flatten(1)\n    fc: Linear(3072, 10)\n"
                    "    head logits: classify\n")
    assert netspec_main(["train", str(spec), "--data", str(folder), "--steps", "1", "--out", str(tmp_path / "r")]) == 1
    assert "refused as a CIFAR-10 python batch" in capsys.readouterr().err and not marker.exists()


@pytest.mark.parametrize("content, problem", [
    (b"not a pickle at all", "cannot read as a CIFAR-10 python batch (UnpicklingError: "),
    (pickle.dumps([1, 2, 3]), "not a CIFAR-10 python batch (expected a dict of arrays, lists and bytes)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "CIFAR batch without 'data' (an array) and 'labels'"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
     "CIFAR rows of 100 bytes are not 3 square colour planes"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}),
     "CIFAR data is float32 [2, 3072], expected uint8 [N, 3*S*S]"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 images but 1 labels"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10**12]}),
     "label 1000000000000 is out of range [0, 100000)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}), "label -1 is out of range"),
    (pickle.dumps({b"data": np.array([object()] * 2), b"labels": [0, 1]}), "refused as a CIFAR-10 python batch"),
])
def test_damaged_cifar_batches_are_named(tmp_path, content, problem):
    (tmp_path / "data_batch_1").write_bytes(content)
    with pytest.raises(DataError) as e:
        load_data(f"cifar10:{tmp_path}", info_img(3, 32, 32))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'data_batch_1'}: {problem}") and msg.endswith(where(f"cifar10:{tmp_path}"))


# --------------------------------------------------------------------------
# MNIST idx: headers against files


def _idx_header(code, dims):
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


def _labels(folder, n=4):
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x08, (n,)) + bytes(range(n)))


@pytest.mark.parametrize("raw, problem", [
    (_idx_header(0x08, (1,) * 255), "idx header claims 255 dimensions (idx files have 1 to 4)"),
    (_idx_header(0x08, (4, 28, 28)) + bytes(100), "idx header says [4, 28, 28] (3,136 bytes of values) but the file "
                                                   "holds 100 bytes"),
    (_idx_header(0x08, (4, 28, 28)) + bytes(4000), "idx header says [4, 28, 28] (3,136 bytes of values) but the file "
                                                    "holds 4,000 bytes"),
    (_idx_header(0x08, (2**32 - 1, 2**32 - 1, 2**32 - 1)), "idx header claims [4294967295, 4294967295, 4294967295] "
                                                            "values"),
    (_idx_header(0x08, (4, 28)), None),  # 2 dims: header and size fit, but images need 3
    (b"\x00\x00\x08\x03\x00\x00", "file ends inside the idx header"),
    (_idx_header(0x0D, (4, 2, 2)) + bytes(64), "MNIST images must be unsigned bytes [N, H, W], got >f4 [4, 2, 2]"),
])
def test_idx_headers_are_checked_against_the_file(tmp_path, raw, problem):
    if problem is None:
        raw = raw + bytes(4 * 28)
        problem = "MNIST images must be unsigned bytes [N, H, W], got uint8 [4, 28]"
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw)
    _labels(tmp_path)
    with pytest.raises(DataError) as e:
        load_data(f"mnist:{tmp_path}", info_img())
    assert str(e.value).startswith(f"{tmp_path / 'train-images-idx3-ubyte'}: {problem}"), str(e.value)
    assert str(e.value).endswith(where(f"mnist:{tmp_path}"))


def test_a_gzipped_idx_is_read_no_further_than_its_header_says(tmp_path):
    # 16 bytes of header promising 4 x 2 x 2 values, then a megabyte of zeros: a small .gz, a big lie
    raw = _idx_header(0x08, (4, 2, 2)) + bytes(1 << 20)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw)
    assert os.path.getsize(tmp_path / "train-images-idx3-ubyte.gz") < 5000
    _labels(tmp_path)
    with pytest.raises(DataError, match=r"idx header says \[4, 2, 2\] \(16 bytes of values\) but the file holds more "
                                        "bytes"):
        load_data(f"mnist:{tmp_path}", info_img())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot read \("):
        load_data(f"mnist:{tmp_path}", info_img())


def test_idx_labels_are_checked(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_header(0x08, (4, 2, 2)) + bytes(16))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x0C, (4,)) + struct.pack(">4i", 0, 1, 2, -3))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: label -3 is out of range \[0, 100000\)"):
        load_data(f"mnist:{tmp_path}", info_img())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x08, (3,)) + bytes(3))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: 3 labels for 4 images in 'train-images-idx3-ubyte'"):
        load_data(f"mnist:{tmp_path}", info_img())


# --------------------------------------------------------------------------
# images: a pixel cap before decoding


def _png_header(w, h):
    """A PNG whose IHDR claims w x h pixels, with no image data worth the name (18 bytes of IDAT)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [30_000, 9_000])  # past Pillow's own bomb limit, and past ours only
def test_an_image_claiming_too_many_pixels_is_refused_before_decoding(tmp_path, side):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.new("L", (8, 8), 0).save(tmp_path / c / "ok.png")
    (tmp_path / "a" / "bomb.png").write_bytes(_png_header(side, side))
    with pytest.raises(DataError) as e:
        load_data(f"images:{tmp_path}", info_img(1, 8, 8, heads=[_head(2)]))
    size = f"{side}x{side} = {side * side:,} pixels" if side * side < 2 * Image.MAX_IMAGE_PIXELS else \
        f"{side * side:,} pixels"
    assert str(e.value) == (f"{tmp_path / 'a' / 'bomb.png'}: image of {size} is over the cap of {MAX_PIXELS:,} "
                            f"pixels {where(f'images:{tmp_path}')}")


def test_an_unreadable_image_is_named(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError, match=r"a/x.png: cannot read image \(cannot identify image file"):
        load_data(f"images:{tmp_path}", info_img(1, 8, 8, heads=[_head(2)]))


# --------------------------------------------------------------------------
# text: the encoding a character vocabulary needs


def test_char_vocabularies_need_utf8(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("héllo wörld ".encode("latin-1") * 20)
    with pytest.raises(DataError) as e:
        load_data(f"text:{p}", info_lm(T=8), RunConfig(vocab="char"))
    assert str(e.value) == (f"{p}: not UTF-8 text (byte 0xe9 at offset 1); convert it to UTF-8, or train on its "
                            f"bytes (--vocab bytes) (data 'text:{p}' for input 'idx' of LM)")
    assert load_data(f"text:{p}", info_lm(T=8)).vocab_size == 256  # bytes need no encoding
