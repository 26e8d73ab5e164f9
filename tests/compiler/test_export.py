"""ONNX export: onnxruntime's outputs equal PyTorch's (1e-4) for the standard-library models
small enough for CI, at the traced sizes and at other sizes of the dynamic axes; the spec's
names survive as node names, initializer names and graph input/output names."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from netspec.compiler.builder import build
from netspec.compiler.export import ExportError, default_dynamic, example_inputs, export_onnx

# (name, overrides, input sizes, dynamic axes, input sizes to run that differ from the traced ones)
MODELS = [
    ("lenet", {}, None, {"x": {0: "B"}}, [(5, 1, 32, 32)]),
    ("ResNet18", {}, {"x": (1, 3, 64, 64)}, {"x": {0: "B"}}, [(1, 3, 64, 64)]),
    ("unet", {"base_channels": 8}, {"x": (1, 1, 188, 188)}, {"x": {0: "B"}}, [(4, 1, 188, 188)]),
    ("gpt2", {"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 256, "block_size": 64}, None,
     {"idx": {0: "B", 1: "T"}}, [(1, 7), (3, 64)]),
]


def _ort(path, args):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: a.numpy() for i, a in zip(s.get_inputs(), args)})


def _inputs(model, shape, seed):
    info = model.netspec
    names = [d for d in info.inputs[0].dims]
    return example_inputs(info, {d: n for d, n in zip(names, shape) if isinstance(d, str)}, seed=seed)


@pytest.mark.parametrize("name,overrides,sizes,dynamic,others", MODELS, ids=[m[0] for m in MODELS])
def test_stdlib_models_run_in_onnxruntime_as_in_pytorch(name, overrides, sizes, dynamic, others, tmp_path):
    model = build(name, input_shapes=sizes, **overrides).eval()
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(model, path)
    assert report.dynamic == dynamic and report.static == {}
    assert report.max_error is not None and report.max_error <= 1e-4 and len(report.checked) >= 2
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == [i.name for i in model.netspec.inputs]
    assert [o.name for o in proto.graph.output] == [h.name for h in model.netspec.heads]
    for vi in proto.graph.input:  # dynamic axes carry the spec's names
        dims = vi.type.tensor_type.shape.dim
        assert {ax: dims[ax].dim_param for ax in dynamic[vi.name]} == dynamic[vi.name]
    # weights keep their state_dict keys (a tied weight once; BatchNorms are folded into convolutions)
    layers = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear, torch.nn.Embedding)
    params = {k for k, _ in model.named_parameters()}
    keys = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, layers)} & params
    assert keys and keys <= {i.name for i in proto.graph.initializer}
    # independently of the report: equal outputs, including sizes the trace never saw
    for k, shape in enumerate([tuple(model.netspec.inputs[0].shape)] + others):
        args = _inputs(model, shape, seed=10 + k)
        with torch.no_grad():
            want = model(*args)
        got = _ort(path, args)[0]
        assert got.shape == tuple(want.shape)
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=1e-4)


def test_nodes_are_named_after_spec_layers(tmp_path):
    model = build("gpt2", n_layer=1, n_head=2, n_embd=32, vocab_size=64, block_size=16)
    report = export_onnx(model, tmp_path / "g.onnx")
    names = [n.name for n in onnx.load(str(tmp_path / "g.onnx")).graph.node]
    assert report.named_nodes == sum("/" in n for n in names) and report.named_nodes >= 15
    assert "transformer.h.0.attn.c_attn/MatMul" in names and "transformer.wte/Gather" in names
    assert "transformer.h.0.ln_1/LayerNormalization" in names and "lm_head/MatMul" in names
    assert len(set(names)) == len(names)


def test_dynamic_axes_by_name_and_errors(tmp_path):
    model = build("lenet")
    assert default_dynamic(model.netspec) == {"B"}
    with pytest.raises(ExportError, match=r"model LeNet5 has no input axis named T \(its named axes: B\)"):
        export_onnx(model, tmp_path / "l.onnx", dynamic=["T"])
    fixed = export_onnx(model, tmp_path / "l.onnx", dynamic=[])
    assert fixed.dynamic == {} and len(fixed.checked) == 1
    dims = onnx.load(str(tmp_path / "l.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 1, 32, 32]


CONV = """\
model Conv(classes=5):
    input x: float[B=1, 3, H=32, W=32]
    c1: Conv2d(3, 8, 3, padding=1); ReLU()
    c2: Conv2d(8, 8, 3, stride=2, padding=1); ReLU()
    AdaptiveAvgPool2d(1); flatten(1)
    fc: Linear(8, classes)
    head y: classify
"""


def test_spatial_axes_on_request(tmp_path):
    model = build(CONV)
    report = export_onnx(model, tmp_path / "c.onnx", dynamic=["B", "H", "W"])
    assert report.dynamic == {"x": {0: "B", 2: "H", 3: "W"}}
    assert report.checked == [((2, 3, 32, 32),), ((3, 3, 32, 32),), ((3, 3, 33, 33),), ((1, 3, 16, 16),)]
    args = (torch.randn(2, 3, 45, 70),)
    with torch.no_grad():
        want = model(*args)
    np.testing.assert_allclose(_ort(tmp_path / "c.onnx", args)[0], want.numpy(), atol=1e-4, rtol=1e-4)


def test_the_check_catches_sizes_the_exported_graph_gets_wrong(tmp_path):
    # a same-padded U-Net runs at 65 x 65 in PyTorch (center_crop absorbs the odd size), but the
    # exporter wrote the crop for the traced 64 x 64: the file claims H, W dynamic and is wrong
    model = build("unet", base_channels=4, padding="same", input_shapes={"x": (1, 1, 64, 64)})
    with pytest.raises(ExportError, match=r"onnxruntime cannot run inputs \[\[3, 1, 65, 65\]\], which PyTorch runs"):
        export_onnx(model, tmp_path / "u.onnx", dynamic=["B", "H", "W"])
    assert export_onnx(model, tmp_path / "u.onnx").dynamic == {"x": {0: "B"}}  # the default: batch only
