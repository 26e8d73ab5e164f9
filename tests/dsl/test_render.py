"""`netspec render`: the DOT structure of diagrams, and the files Graphviz writes."""
from __future__ import annotations

import re

import pytest

from netspec.dsl.frontend import elaborate
from netspec.dsl.render import RenderError, render, to_dot

GPT = '''\
## A tiny GPT for diagram tests
block MLP(d):
    fc: Linear(d, 4 * d)
    GELU()
    proj: Linear(4 * d, d)

block Block(d):
    ## pre-norm residual block
    input x
    residual:
        ln_1: LayerNorm(d)
        attn: Linear(d, d)
    residual:
        ln_2: LayerNorm(d)
        mlp: MLP(d)

model TinyGPT(vocab=64, T0=8, d=16, n_layer=12):
    input idx: long[B=1, T=T0]
    transformer:
        wte: Embedding(vocab, d)
        drop: Dropout(0.1)
        h:
            repeat n_layer:
                Block(d)
        ln_f: LayerNorm(d)
    lm_head: Linear(d, vocab, bias=false)
    head logits: lm
'''

RESNET = '''\
block Basic(cin, cout, stride=1):
    input x
    conv1: Conv2d(cin, cout, 3, stride=stride, padding=1, bias=false)
    bn1: BatchNorm2d(cout)
    relu: ReLU()
    conv2: Conv2d(cout, cout, 3, padding=1, bias=false)
    bn2: BatchNorm2d(cout)
    if stride != 1 or cin != cout:
        downsample:
            Conv2d(cin, cout, 1, stride=stride, bias=false)(x)
            BatchNorm2d(cout)
        sc = _
        bn2
        +sc
    else:
        +x
    ReLU()

model TinyResNet(classes=10):
    input img: float[B=1, 3, 16, 16]
    conv1: Conv2d(3, 8, 3, padding=1, bias=false)
    bn1: BatchNorm2d(8)
    relu: ReLU()
    layer1:
        repeat 3:
            Basic(8, 8)
    layer2:
        Basic(8, 16, 2)
        Basic(16, 16)
    avgpool: AdaptiveAvgPool2d(1)
    flatten(1)
    fc: Linear(16, classes)
    head logits: classify
'''

TWO_HEADS = '''\
block Pair(d):
    input a: [B, d]
    input b: [B, d]
    output sum = a + b
    output prod = a * b

model TwoHeads(d=16):
    input img: float[B=2, 3, 8, 8]
    input aux: float[B=2, d]
    Conv2d(3, d, 3, padding=1)(img)
    AdaptiveAvgPool2d(1); flatten(1)
    feat = _
    s, p = Pair(d)(feat, aux)
    head logits = s : classify
    head other = p * 2 : regress
'''

CROSS = '''\
block Dec(d):
    input x: [B, T, d]
    input memory: [B, S, d]
    ln: LayerNorm(d)(x)
    attn: MultiheadAttention(d, 2)(_, memory, memory)
    +x

model Cross(d=8, n=3):
    input tgt: float[B=1, T=4, d]
    input src: float[B=1, S=5, d]
    enc: Linear(d, d)(src)
    tgt
    layers:
        repeat n:
            Dec(d)(_, enc)
    head out: regress
'''

ESCAPES = '''\
## Title doc with "quotes", <angle> & {braces}

## the model's own doc: a < b > c
model Esc(d=4):
    ## the input, {x}
    input x: float[B=1, 2, 4, 4]
    up: Upsample(scale_factor=2, mode="nearest")   ## doubles H, W: "nearest" {fast}
    head out: regress
'''


def _spec(tmp_path, name, text):
    p = tmp_path / f"{name}.nn"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    d = tmp_path_factory.mktemp("specs")
    return {name: _spec(d, name, text) for name, text in
            [("gpt", GPT), ("resnet", RESNET), ("two", TWO_HEADS), ("cross", CROSS), ("esc", ESCAPES)]}


@pytest.fixture(scope="module")
def gpt(specs):
    return elaborate(str(specs["gpt"])).graph


@pytest.fixture(scope="module")
def resnet(specs):
    return elaborate(str(specs["resnet"])).graph


# ---- reading DOT text back ----
_ID = r'("(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*)'


def _unq(s: str) -> str:
    return s[1:-1] if s.startswith('"') else s


def nodes(src: str) -> dict[str, str]:
    """node id -> the start of its attribute text (up to the end of the line)."""
    out = {}
    for m in re.finditer(rf"^\t+{_ID} \[(.*)$", src, re.M):
        if m.group(1) not in ("graph", "node", "edge"):
            out[_unq(m.group(1))] = m.group(2)
    return out


def edges(src: str) -> list[tuple[str, str, str]]:
    return [(_unq(a), _unq(b), attrs or "")
            for a, b, attrs in re.findall(rf"^\t+{_ID} -> {_ID}(?: \[(.*)\])?$", src, re.M)]


def clusters(src: str) -> list[str]:
    return [_unq(m) for m in re.findall(rf"subgraph {_ID} {{", src) if _unq(m).startswith("cluster")]


# ---- structure ----
def test_bottom_to_top_with_inputs_below_and_heads_on_top(gpt):
    src = to_dot(gpt).source
    assert "rankdir=BT" in src
    assert re.search(r"subgraph inputs \{\s*rank=source\s*idx \[", src)
    assert re.search(r'subgraph heads \{\s*rank=sink\s*"head/logits" \[', src)
    assert "logits (lm)" in nodes(src)["head/logits"]


def test_repeated_block_is_one_cluster_marked_x12(gpt):
    src = to_dot(gpt).source
    cl = clusters(src)
    assert "cluster_transformer" in cl  # a named group
    assert "cluster_transformer.h.0" in cl  # the run, drawn once
    assert "cluster_transformer.h.0.mlp" in cl  # a block inside it
    assert not any(c.startswith("cluster_transformer.h.1") for c in cl)
    assert "cluster_transformer.h" not in cl  # a group holding only the run is the run
    assert re.search(r"h\.0–h\.11\s+Block\(d=16\) ×12", src)
    ns = nodes(src)
    assert "transformer.h.0.ln_1" in ns and "transformer.h.0.mlp.fc" in ns
    assert not [n for n in ns if n.startswith("transformer.h.1")]
    assert not [n for n in ns if n.endswith(".x")]  # block inputs are wired through, not drawn


def test_depth_collapses_groups_blocks_and_runs(gpt):
    src0 = to_dot(gpt, depth=0).source
    assert set(nodes(src0)) == {"idx", "grp/transformer", "lm_head", "head/logits"}
    assert clusters(src0) == []
    assert "Embedding → Dropout → Block ×12 → LayerNorm" in nodes(src0)["grp/transformer"]
    assert {(a, b) for a, b, _ in edges(src0)} == {
        ("idx", "grp/transformer"), ("grp/transformer", "lm_head"), ("lm_head", "head/logits")}

    ns1 = nodes(to_dot(gpt, depth=1).source)
    assert "Block ×12" in ns1["grp/transformer.h"] and "folder" in ns1["grp/transformer.h"]
    assert {"transformer.wte", "transformer.drop", "transformer.ln_f"} <= set(ns1)

    src2 = to_dot(gpt, depth=2).source
    run = nodes(src2)["transformer.h.0"]
    assert "×12" in run and "box3d" in run and "penwidth=2" in run
    assert "cluster_transformer.h.0" not in clusters(src2)

    src3 = to_dot(gpt, depth=3).source
    assert "cluster_transformer.h.0" in clusters(src3)
    assert "transformer.h.0.mlp" in nodes(src3)  # the MLP inside is one node
    assert "cluster_transformer.h.0.mlp" not in clusters(src3)
    assert to_dot(gpt, depth=99).source == to_dot(gpt).source
    with pytest.raises(ValueError):
        to_dot(gpt, depth=-1)


def test_skip_edges_are_dashed_and_land_on_merges(gpt):
    src = to_dot(gpt).source
    ns = nodes(src)
    skips = [(a, b) for a, b, attrs in edges(src) if "dashed" in attrs]
    assert len(skips) == 2  # the two residuals of the block
    for a, b in skips:
        assert "label=<+>" in ns[b] and "circle" in ns[b]
    # the first residual reads the block's input: drawn from what feeds the run
    assert ("transformer.drop", skips[0][1]) in skips
    attrs = next(at for a, b, at in edges(src) if "dashed" in at)
    assert "constraint=false" in attrs
    flow = [attrs for a, b, attrs in edges(src) if "dashed" not in attrs]
    assert flow and not any("dashed" in at for at in flow)


def test_runs_need_the_same_block_instance(resnet):
    src = to_dot(resnet).source
    cl = clusters(src)
    assert "cluster_layer1.0" in cl and "layer1.0–layer1.2" in src and "×3" in src
    # layer2's two blocks differ (stride 2 + downsample, then identity): two clusters, no ×N
    assert "cluster_layer2.0" in cl and "cluster_layer2.1" in cl
    assert "cluster_layer2.0.downsample" in cl
    assert "layer2.0.downsample.0" in nodes(src)
    src1 = to_dot(resnet, depth=1).source
    ns = nodes(src1)
    assert "×3" in ns["layer1.0"] and "×" not in ns["layer2.0"] + ns["layer2.1"]
    src0 = to_dot(resnet, depth=0).source
    assert len(nodes(src0)) == 1 + 3 + 2 + 3 + 1  # input, stem, 2 groups, pool/flatten/fc, head
    assert "Basic ×3" in nodes(src0)["grp/layer1"]


def test_run_of_explicit_calls_with_a_side_input(specs):
    g = elaborate(str(specs["cross"])).graph
    src = to_dot(g).source
    assert "cluster_layers.0" in clusters(src) and "layers.0–layers.2  Dec(d=8) ×3" in src
    es = {(a, b): at for a, b, at in edges(src)}
    assert ("enc", "layers.0.attn") in es  # memory, fed to every instance: one edge
    assert ("tgt", "layers.0.ln") in es and "dashed" in es[("tgt", "layers.0.add")]
    ns = nodes(to_dot(g, depth=1).source)
    assert "×3" in ns["layers.0"]


def test_every_head_and_multi_output_blocks(specs):
    g = elaborate(str(specs["two"])).graph
    src = to_dot(g).source
    ns = nodes(src)
    assert "logits (classify)" in ns["head/logits"] and "other (regress)" in ns["head/other"]
    assert "img" in ns and "aux" in ns
    es = {(a, b) for a, b, _ in edges(src)}
    # s, p = Pair(...): each head reads its own output of the expanded block
    assert ("pair.add", "head/logits") in es and ("pair.mul", "mul") in es
    assert ("flatten", "pair.add") in es and ("aux", "pair.mul") in es
    assert not [n for n in ns if n in ("s", "p")]
    es0 = {(a, b) for a, b, _ in edges(to_dot(g, depth=0).source)}
    assert ("pair", "head/logits") in es0 and ("aux", "pair") in es0


def test_escaping_and_docs(specs):
    g = elaborate(str(specs["esc"])).graph
    src = to_dot(g, title='My "net" <v2>').source
    assert "a &lt; b &gt; c" in src  # the model's doc, in the title
    assert 'tooltip="the model\'s own doc: a < b > c"' in src  # ... and the graph's tooltip, quoted
    assert "<I>a < b" not in src
    assert "My &quot;net&quot; &lt;v2&gt;" in src
    assert 'mode=&quot;nearest&quot;' in src  # the layer text in an HTML label
    up = nodes(src)["up"]
    assert 'tooltip="up' in up and 'doubles H, W: \\"nearest\\" {fast}' in src
    svg = to_dot(g).pipe(format="svg").decode()  # Graphviz escapes again: still text
    assert "<svg" in svg and "nearest" in svg


def test_deterministic(specs):
    a = to_dot(elaborate(str(specs["resnet"])).graph).source
    b = to_dot(elaborate(str(specs["resnet"])).graph).source
    assert a == b


def test_files_in_every_format(gpt, tmp_path):
    magic = {".svg": b"<svg", ".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-", ".dot": b"digraph"}
    for suffix, head in magic.items():
        out = render(gpt, tmp_path / "sub" / f"gpt{suffix}", depth=3)
        data = out.read_bytes()
        assert out.suffix == suffix and len(data) > 100
        assert (head in data[:400]) if suffix == ".svg" else data.startswith(head)
    with pytest.raises(RenderError, match="use one of"):
        render(gpt, tmp_path / "gpt.jpeg")
