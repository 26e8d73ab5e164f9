"""Every ```nn example in docs/LANGUAGE.md parses, checks and builds."""
import re
from pathlib import Path

import pytest
import torch

import netspec
from netspec.dsl.frontend import check_all

DOC = Path(__file__).resolve().parents[2] / "docs" / "LANGUAGE.md"
EXAMPLES = re.findall(r"```nn\n(.*?)```", DOC.read_text(), re.S)


def test_doc_has_examples():
    assert len(EXAMPLES) >= 12


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_example_builds_and_runs(text, tmp_path):
    spec = tmp_path / "example.nn"
    spec.write_text(text)
    _, checked, warnings = check_all(spec)
    assert checked, "every example defines a model"
    assert not warnings, [str(w) for w in warnings]
    for c in checked:
        model = netspec.build(spec, c.defn.name)
        inputs = [torch.zeros(i.shape, dtype=getattr(torch, i.dtype)) for i in model.netspec.inputs]
        model.eval()
        out = model(*inputs)
        outs = out if isinstance(out, dict) else {model.netspec.heads[0].name: out}
        for head in model.netspec.heads:
            assert tuple(outs[head.name].shape) == head.shape
