"""`netspec summary`: rows named by their place in the model (a named group is a row of its
own, its members below it), and `--depth N` meaning what `render --depth N` means."""
from __future__ import annotations

import pytest

import netspec
from netspec.cli import main
from netspec.compiler.summary import summarize
from netspec.dsl.render.view import VCluster, VNode, build_view

NESTED = """\
block Blk(d):
    input x
    g:
        Linear(d, d)
        ReLU()
        sub:
            fc: Linear(d, d)
    out: Linear(d, d)

block Outer(d):
    inner: Blk(d)
    fc: Linear(d, d)

model M(d=4):
    input x: float[B=1, 4]
    b: Blk(d)
    o: Outer(d)
    head y
"""


@pytest.fixture
def nested(tmp_path):
    path = tmp_path / "nested.nn"
    path.write_text(NESTED)
    return path


def test_a_group_inside_a_block_keeps_its_level(nested, capsys):
    s = summarize(netspec.analyze(nested))
    rows = [(r["name"], r["type"], r["depth"], r["params"]) for r in s["layers"]]
    assert rows == [
        ("x", "input", 0, 0),
        ("b", "Blk", 0, 60), ("b.g", "group", 1, 40), ("b.g.0", "Linear", 2, 20), ("b.g.1", "ReLU", 2, 0),
        ("b.g.sub", "group", 2, 20), ("b.g.sub.fc", "Linear", 3, 20), ("b.out", "Linear", 1, 20),
        ("o", "Outer", 0, 80), ("o.inner", "Blk", 1, 60), ("o.inner.g", "group", 2, 40),
        ("o.inner.g.0", "Linear", 3, 20), ("o.inner.g.1", "ReLU", 3, 0), ("o.inner.g.sub", "group", 3, 20),
        ("o.inner.g.sub.fc", "Linear", 4, 20), ("o.inner.out", "Linear", 2, 20), ("o.fc", "Linear", 1, 20),
    ]
    assert s["params"] == sum(r["params"] for r in s["layers"] if r["depth"] == 0) == 140
    assert s["macs"] == 112
    assert main(["summary", str(nested)]) == 0
    names = [line.split("│")[1].rstrip() for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert names[:8] == [" x", " b", "   g", "     0", "     1", "     sub", "       fc", "   out"]


def _render_containers(view) -> dict[str, bool]:
    """Every block and group the diagram draws: path -> drawn collapsed (one node)."""
    out: dict[str, bool] = {}

    def walk(items):
        for it in items:
            if isinstance(it, VCluster):
                out[it.key] = False
                walk(it.items)
            elif isinstance(it, VNode) and it.kind in ("block", "repeat", "group"):
                out[it.key] = True
    walk(view.root.items)
    return out


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, None])
def test_summary_depth_collapses_what_render_depth_collapses(nested, depth):
    a = netspec.analyze(nested)
    drawn = _render_containers(build_view(a.graph, depth))
    full = {r["name"] for r in summarize(a)["layers"] if r["block"]}
    rows = {r["name"]: r for r in summarize(a, depth)["layers"]}
    shown = {name: not rows[name]["block"] for name in full if name in rows}
    assert shown == drawn
    if depth is not None:  # nothing below a collapsed row, every layer above the cut
        assert max(r["depth"] for r in rows.values()) == min(depth, 4)
        assert sum(r["macs"] or 0 for r in rows.values() if not r["block"]) == 112


def test_summary_depth_on_gpt2_agrees_with_render():
    a = netspec.analyze("gpt2", overrides={"n_layer": 2})
    for depth in (0, 1, 2, 3):
        drawn = _render_containers(build_view(a.graph, depth))
        rows = {r["name"]: r for r in summarize(a, depth)["layers"]}
        assert {k: not rows[k]["block"] for k in drawn} == drawn
        assert summarize(a, depth)["macs"] == summarize(a)["macs"]
