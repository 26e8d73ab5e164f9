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
