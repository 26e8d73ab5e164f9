"""`netspec export`: a spec or a trained run folder to ONNX, from the command line."""
from __future__ import annotations

import onnxruntime as ort
import torch

from netspec.cli import main
from netspec.compiler.builder import build
from netspec.compiler.export import example_inputs


def _ort(path, args):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(s.run(None, {i.name: a.numpy() for i, a in zip(s.get_inputs(), args)})[0])


def test_export_a_spec(tmp_path, capsys):
    out = tmp_path / "gpt.onnx"
    code = main(["export", "gpt2", "--set", "n_layer=1", "n_head=2", "n_embd=32", "vocab_size=64", "block_size=16",
                 "-o", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and out.is_file()
    assert lines[0].startswith(f"wrote {out}: inputs idx[B, T]; outputs logits; ")
    assert lines[0].endswith("named after spec layers; fresh weights (the spec's initialisation; "
                             "--weights FILE or a run folder for trained ones)")
    assert lines[1] == "dynamic axes: B, T"
    assert lines[2].startswith("onnxruntime matches PyTorch: max |difference| ")
    assert lines[2].endswith("on inputs [2, 16]; [3, 16]; [1, 8]")  # [3, 17]: past block_size


def test_export_a_trained_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lenet", "--data", "digits", "--steps", "3", "--batch-size", "8", "--out", str(run),
                 "--seed", "0"]) == 0
    capsys.readouterr()
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(run), "-o", str(out)]) == 0
    assert f"trained weights of {run}" in capsys.readouterr().out
    from netspec.train import load_run
    trained, _, _ = load_run(run)
    trained.eval()
    args = example_inputs(trained.netspec, {"B": 4}, seed=5)
    with torch.no_grad():
        want = trained(*args)
        fresh = build("lenet").eval()(*args)
    got = _ort(out, args)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, fresh, atol=1e-3)  # the run's weights, not a new initialisation


def test_export_errors(tmp_path, capsys):
    run = tmp_path / "notarun"
    run.mkdir()
    assert main(["export", str(run), "-o", str(tmp_path / "x.onnx")]) == 1
    assert "is not a run folder (no model.json)" in capsys.readouterr().err
    assert main(["export", str(run), "--set", "n=1", "-o", str(tmp_path / "x.onnx")]) == 1
    assert "is a run folder: its model, parameters, input sizes and weights are the run's" in capsys.readouterr().err
    assert main(["export", "lenet", "--dynamic", "T", "-o", str(tmp_path / "x.onnx")]) == 1
    assert capsys.readouterr().err.strip() == "error: model LeNet5 has no input axis named T (its named axes: B)"
