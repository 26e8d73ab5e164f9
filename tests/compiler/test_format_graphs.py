"""Formatting never changes what a spec builds: every shipped spec and every doc example,
formatted, gives the same graph IR and the same `summary --json` as before."""
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from netspec.cli import main
from netspec.dsl.errors import Span
from netspec.dsl.format import format_text
from netspec.dsl.frontend import elaborate
from netspec.dsl.ir import BlockGraph, Ref
from netspec.dsl.loader import load

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ["stdlib", "specs"]


def _plain(x):
    """A comparable form of IR values, without source spans."""
    if isinstance(x, Span):
        return None
    if isinstance(x, Ref):
        return ("ref", x.node)
    if isinstance(x, BlockGraph):
        return _graph(x)
    if dataclasses.is_dataclass(x):
        return (type(x).__name__,) + tuple(_plain(getattr(x, f.name)) for f in dataclasses.fields(x))
    if isinstance(x, dict):
        return tuple((k, _plain(v)) for k, v in x.items())
    if isinstance(x, (tuple, list)):
        return tuple(_plain(v) for v in x)
    return x


def _graph(g: BlockGraph):
    ops = tuple(_plain(g.op(n)) for n in g.graph.nodes)
    edges = tuple(sorted((u, v, tuple(sorted(d.items()))) for u, v, d in g.graph.edges(data=True)))
    return (g.name, g.kind, _plain(g.params), ops, edges, _plain(g.outputs), tuple(g.containers), g.doc)


def _summary(path, model, capsys):
    assert main(["summary", str(path), "--model", model, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    s.pop("file")
    return s


def _cases():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.nn")):
            for d in load(path).models():
                yield pytest.param(folder, path.name, d.name, id=f"{folder}/{path.name}:{d.name}")


@pytest.fixture(scope="module")
def formatted(tmp_path_factory):
    """A copy of each spec folder, every file formatted (imports between them still resolve)."""
    root = tmp_path_factory.mktemp("formatted")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, root / folder)
        for path in (root / folder).glob("*.nn"):
            path.write_text(format_text(path.read_text(), str(path)))
    return root


@pytest.mark.parametrize("folder, name, model", list(_cases()))
def test_formatted_spec_builds_the_same_graph_and_summary(folder, name, model, formatted, capsys):
    original, reformatted = ROOT / folder / name, formatted / folder / name
    assert _graph(elaborate(original, model).graph) == _graph(elaborate(reformatted, model).graph)
    assert _summary(original, model, capsys) == _summary(reformatted, model, capsys)


DOC_EXAMPLES = [(md, i, m.group(1)) for md in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
                for i, m in enumerate(re.finditer(r"```nn\n(.*?)```", md.read_text(), re.S))]


@pytest.mark.parametrize("md, i, text", DOC_EXAMPLES, ids=[f"{md.name}-{i}" for md, i, _ in DOC_EXAMPLES])
def test_formatted_doc_example_builds_the_same_graphs(md, i, text, tmp_path, capsys):
    before, after = tmp_path / "before.nn", tmp_path / "after.nn"
    before.write_text(text)
    after.write_text(format_text(text))
    for d in load(before).models():
        assert _graph(elaborate(before, d.name).graph) == _graph(elaborate(after, d.name).graph)
        assert _summary(before, d.name, capsys) == _summary(after, d.name, capsys)
