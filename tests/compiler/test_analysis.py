"""analyze() on the meta device: one module per distinct block for shape inference, exact
parameter counts without a module at every path, and the whole model when asked for."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.compiler.instances import GraphCache, instantiate
from netspec.compiler.metashapes import no_init
from netspec.dsl.frontend import check_all

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "stdlib").glob("*.nn")) + sorted((ROOT / "specs").glob("*.nn"))


def _torch_counts(module):
    params = list(module.parameters())  # a tied Parameter once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_counts_equal_torchs_on_the_whole_model(path):
    _, checked, _ = check_all(path)
    for c in checked:
        a = netspec.analyze(path, c.defn.name)
        assert (a.num_params, a.trainable_params) == _torch_counts(a.module), c.defn.name


def test_frozen_and_tied_parameters_are_counted_as_torch_does():
    spec = """
block Enc(d):
    fc: Linear(d, d, frozen=true)
    out: Linear(d, d)

model M(d=8, v=20):
    input idx: long[B=2, T=4]
    emb: Embedding(v, d)
    h:
        repeat 3:
            Enc(d)
    head_: Linear(d, v, bias=false, tie=emb)
    head y = head_
"""
    a = netspec.analyze(spec)
    full = netspec.build(spec)
    assert (a.num_params, a.trainable_params) == _torch_counts(full) == (20 * 8 + 3 * 2 * 72, 20 * 8 + 3 * 72)


def test_shape_inference_shares_one_module_per_block():
    a = netspec.analyze("gpt2", overrides={"n_layer": 200})
    assert a.shapes["transformer.h.199.attn.c_attn"].shape == (1, 1024, 2304)  # every layer has its shapes
    assert a.shapes["transformer.h.0.mlp"].shape == (1, 1024, 768)
    assert a.num_params == 124_439_808 + 188 * 7_087_872
    with torch.device("meta"), no_init():
        shared = instantiate(a.graph, GraphCache(meta=True, share=True))
    h = shared.transformer.h
    assert getattr(h, "0") is getattr(h, "199")  # one object at every path of the block
    whole = a.module  # built when asked for: a layer of its own at every path
    assert whole.get_submodule("transformer.h.0") is not whole.get_submodule("transformer.h.199")
    assert len(whole.state_dict()) == len(shared.state_dict())  # the same keys either way


def test_later_instances_copy_the_first_ones_layers_on_meta():
    with torch.device("meta"), no_init():
        gm = instantiate(netspec.analyze("gpt2", overrides={"n_layer": 3}).graph, GraphCache(meta=True))
    a, b = gm.get_submodule("transformer.h.0"), gm.get_submodule("transformer.h.2")
    assert type(a) is not type(b) and type(a).__name__ == type(b).__name__ == "Block"  # a class each, as fx does
    assert a.graph is b.graph and a.code == b.code  # compiled once
    la, lb = a.get_submodule("attn.c_attn"), b.get_submodule("attn.c_attn")
    assert la is not lb and la.weight is not lb.weight and la.weight.shape == lb.weight.shape
    assert la.weight.device.type == "meta" and la.in_features == lb.in_features == 768
    assert la._forward_hooks is not lb._forward_hooks  # nothing mutable shared
