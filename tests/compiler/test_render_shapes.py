"""Diagrams with inferred shapes on their edges (needs the compiler's shape inference)."""
from __future__ import annotations

import re

from netspec.compiler.builder import analyze
from netspec.dsl.render import to_dot
from tests.dsl.test_render import GPT, edges


def test_shapes_on_edges():
    a = analyze(GPT, file="gpt.nn")
    src = to_dot(a.graph, shapes=a.shapes).source
    labels = {(x, y): re.search(r'label=" ([^"]*)"', at).group(1) for x, y, at in edges(src)
              if "label=" in at}
    assert labels[("idx", "transformer.wte")] == "[1, 8]"
    assert labels[("lm_head", "head/logits")] == "[1, 8, 64]"
    assert labels[("transformer.h.0.mlp.fc", "transformer.h.0.mlp.gelu")] == "[1, 8, 64]"
    # what leaves the collapsed run is the last instance's value
    src2 = to_dot(a.graph, depth=2, shapes=a.shapes).source
    assert any(x == "transformer.h.0" and 'label=" [1, 8, 16]"' in at for x, y, at in edges(src2))
    assert "label=" not in "".join(at for _, _, at in edges(to_dot(a.graph).source))


def test_parameter_counts_per_layer_cluster_and_tied_weight():
    from netspec.compiler.diagram import diagram_data, param_counts

    a = analyze(GPT, file="gpt.nn")
    counts = param_counts(a.module)
    d, vocab = 16, 64
    block = 2 * 2 * d + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)  # 2 LayerNorms, attn, MLP
    assert counts["transformer.h.0"] == block
    assert counts["transformer.h"] == 12 * block
    assert counts["transformer.wte"] == vocab * d and counts["transformer.h.0.mlp.fc.weight"] == 4 * d * d
    assert counts["transformer"] == vocab * d + 12 * block + 2 * d
    src = to_dot(a.graph, **diagram_data(a, params=True)).source
    assert f"×12</B>  ·  {12 * block / 1000:.3g}K params" in src  # a run counts all its instances
    assert f"parameters: {12 * block:,} ({block:,} each)" in src


def test_tied_weights_count_at_both_layers_and_once_in_the_model():
    from netspec.compiler.diagram import param_counts

    a = analyze("gpt2", overrides={"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 100, "block_size": 16})
    counts = param_counts(a.module)
    assert counts["lm_head"] == counts["transformer.wte"] == 100 * 32
    assert sum(v for k, v in counts.items() if "." not in k) == a.num_params + 100 * 32  # lm_head: the shared one
