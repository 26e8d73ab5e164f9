"""What diagrams say beyond structure: which edges are skips, tied weights, block labels by
name, constants on merges, directions, the U fold, collapse by path and escaping."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from netspec.dsl.frontend import elaborate
from netspec.dsl.render import to_dot, to_svg
from netspec.dsl.render.view import build_view
from tests.dsl.test_render import clusters, edges

EMBED = '''\
block Attn(d, nh):
    input x: [B, T, d]
    c_attn: Linear(d, 3 * d)
    q, k, v = split(_, d, dim=2)
    att = (q @ k.T) * (1.0 / sqrt(d // nh))
    softmax(dim=-1)
    @ v
    +x

model Tiny(vocab=32, T0=8, d=16):
    input idx: long[B=1, T=T0]
    emb:
        wte: Embedding(vocab, d)
        wpe: Embedding(T0, d)(arange(T))
        x = wte + wpe
    attn: Attn(d, 4)
    head_fc: Linear(d, vocab, bias=false, tie=emb.wte)
    head logits: lm
'''

SHORTCUTS = '''\
block Res(c, stride=1, project=false, zero_init=false):
    input x: [B, c, H, W]
    conv1: Conv2d(c, c, 3, stride=stride, padding=1)
    relu: ReLU()
    conv2: Conv2d(c, c, 3, padding=1) as out
    if project:
        x
        down: Conv2d(c, c, 1, stride=stride)
        sc = _
        out
        +sc
    else:
        +x

model Branches():
    input x: float[B=1, 4, 8, 8]
    a: Conv2d(4, 4, 1)(x)
    b: Conv2d(4, 4, 3, padding=1)(x)
    ab = a + b
    r: Res(4, 2, true)
    s: Res(4)
    head y: regress
'''

UNET = '''\
block Down(cin, cout):
    input x: [B, cin, H, W]
    c1: Conv2d(cin, cout, 3, padding=1)
    r1: ReLU()

block Up(cin, cout):
    input x: [B, cin, H, W]
    input skip: [B, cout, Hs, Ws]
    up: ConvTranspose2d(cin, cout, 2, stride=2)
    cat(skip, _, dim=1)
    c1: Conv2d(2 * cout, cout, 3, padding=1)

model MiniU(c=4):
    input x: float[B=1, 1, 16, 16]
    d1: Down(1, c)
    p1: MaxPool2d(2)
    d2: Down(c, 2 * c)
    p2: MaxPool2d(2)
    mid: Down(2 * c, 4 * c)
    u2: Up(4 * c, 2 * c)(_, d2)
    u1: Up(2 * c, c)(_, d1)
    out: Conv2d(c, 2, 1)
    head y: segment
'''

HOSTILE = '''\
## </script><script>alert(4)</script>
block Tagged(d, tag="<b>"):
    fc: Linear(d, d)   ## <img src=x onerror=alert(3)>

## </title><script>alert(1)</script> & <b>bold</b>
model Evil(d=4):
    ## "><svg onload=alert(2)> {braces} \\ backslash
    input x: float[B=1, d]
    t: Tagged(d, "</text><script>alert(5)</script>")
    head y: regress
'''


def _spec(tmp_path, text, name="m"):
    p = tmp_path / f"{name}.nn"
    p.write_text(text)
    return elaborate(str(p))


def attrs(src: str, node: str) -> str:
    """The whole attribute list of `node` (tooltips span lines)."""
    start = re.search(rf'^\t+"?{re.escape(node)}"? \[', src, re.M).end()
    quoted, i = False, start
    while quoted or src[i] != "]":
        if src[i] == "\\":
            i += 1
        elif src[i] == '"':
            quoted = not quoted
        i += 1
    return src[start:i]


def _dashed(src):
    return {(a, b) for a, b, at in edges(src) if "dashed" in at}


def test_main_paths_are_solid_and_only_true_skips_dashed(tmp_path):
    src = to_dot(_spec(tmp_path, EMBED).graph).source
    es = {(a, b): at for a, b, at in edges(src)}
    assert ("emb.wte", "add") in es and ("emb.wpe", "add") in es
    assert _dashed(src) == {("add", "attn.add")}  # only the residual; the token embedding is a main path
    assert ("attn.v", "attn.matmul_1") in es  # att @ v: the values are a branch, not a skip


def test_projection_shortcut_is_a_skip_and_equal_branches_are_not(tmp_path):
    src = to_dot(_spec(tmp_path, SHORTCUTS).graph).source
    assert _dashed(src) == {("r.down", "r.add"), ("r.add", "s.add")}
    assert {("a", "add"), ("b", "add")} <= {(a, b) for a, b, _ in edges(src)}  # two branches, both solid


def test_tied_weights_are_a_dotted_edge_named_in_tooltips(tmp_path):
    src = to_dot(_spec(tmp_path, EMBED).graph).source
    tie = [at for a, b, at in edges(src) if (a, b) == ("emb.wte", "head_fc")]
    assert len(tie) == 1 and "dotted" in tie[0] and "constraint=false" in tie[0] and "dir=none" in tie[0]
    assert 'tooltip="head_fc.weight is emb.wte.weight"' in tie[0]
    assert "weight tied: head_fc.weight is emb.wte.weight" in attrs(src, "emb.wte")
    assert "weight tied: head_fc.weight is emb.wte.weight" in attrs(src, "head_fc")
    assert "tied weight" in src  # the legend says what the dotted line is
    assert "tied weight" not in to_dot(_spec(tmp_path, SHORTCUTS).graph).source
    # a collapsed group draws the tie from its node
    src0 = to_dot(_spec(tmp_path, EMBED).graph, depth=0).source
    assert [(a, b) for a, b, at in edges(src0) if "dotted" in at] == [("grp/emb", "head_fc")]


def test_blocks_are_labelled_by_parameter_name_without_defaults(tmp_path):
    checked = _spec(tmp_path, SHORTCUTS)
    src = to_dot(checked.graph, program=checked.program).source
    assert "r  Res(c=4, stride=2, project=true)" in src  # zero_init=false is the default: left out
    assert "s  Res(c=4)" in src
    bare = to_dot(checked.graph).source  # without the program every parameter is named
    assert "r  Res(c=4, stride=2, project=true, zero_init=false)" in bare
    assert "Res(4, 2" not in bare


def test_merge_with_a_constant_shows_it(tmp_path):
    src = to_dot(_spec(tmp_path, EMBED).graph).source
    assert "* 0.5" in attrs(src, "attn.mul")  # (q @ k.T) * (1.0 / sqrt(16 // 4))
    assert "label=<+>" in attrs(src, "attn.add")  # tensor + tensor stays a small circle


def test_rankdir_and_dpi(tmp_path):
    g = _spec(tmp_path, EMBED).graph
    assert "rankdir=BT" in to_dot(g).source
    for d in ("TB", "LR", "RL"):
        assert f"rankdir={d}" in to_dot(g, rankdir=d).source
    assert "dpi=150" in to_dot(g, dpi=150).source and "dpi" not in to_dot(g).source
    with pytest.raises(ValueError, match="rankdir must be one of BT, TB, LR, RL"):
        to_dot(g, rankdir="UP")
    with pytest.raises(ValueError, match="dpi must be positive"):
        to_dot(g, dpi=0)


def test_parameter_counts_on_layers_clusters_and_runs(tmp_path):
    g = _spec(tmp_path, EMBED).graph
    params = {"emb": 640, "emb.wte": 512, "emb.wpe": 128, "attn": 816, "attn.c_attn": 816, "head_fc": 512}
    src = to_dot(g, params=params).source
    assert "512 params" in attrs(src, "emb.wte") and "parameters: 512" in attrs(src, "emb.wte")
    assert "emb</B>  ·  640 params" in src
    assert "816 params" in attrs(src, "attn.c_attn")
    assert "<B>attn  Attn(d=16, nh=4)</B>  ·  816 params" in src
    assert "params" not in attrs(src, "add")  # no parameters, no line
    assert "params" not in to_dot(g).source.replace("parameters)", "")


def test_collapse_and_expand_by_path(tmp_path):
    g = _spec(tmp_path, EMBED).graph
    src = to_dot(g, collapsed={"attn"}).source
    assert "cluster_attn" not in clusters(src) and 'id="x-attn"' in attrs(src, "attn")
    src = to_dot(g, depth=0, expanded={"attn"}).source
    assert "cluster_attn" in clusters(src)
    assert 'id="c-attn"' in src  # a cluster that a click collapses


def test_skips_between_clusters_fold_the_drawing_into_a_u(tmp_path):
    src = to_dot(_spec(tmp_path, UNET).graph).source
    es = edges(src)
    level = [(a, b, at) for a, b, at in es if "minlen=0" in at]
    assert {(a, b) for a, b, _ in level} == {("d1.r1", "u1.cat"), ("d2.r1", "u2.cat")}
    assert all("dashed" in at and "constraint" not in at for _, _, at in level)
    # the encoder and the part up to the decoder run against the direction (written reversed)
    back = {(b, a) for a, b, at in es if "dir=back" in at}
    assert {("x", "d1.c1"), ("d1.c1", "d1.r1"), ("d1.r1", "p1"), ("d2.r1", "p2")} <= back
    assert not [1 for a, b in back if a.startswith(("u", "mid")) or b.startswith(("u", "out", "mid"))]
    # the turn (p2 and the mid block, a short chain) is one row
    assert re.search(r"newrank=true", src)
    assert re.search(r'\{\s*rank=same\s*"mid.c1"\s*"mid.r1"\s*p2\s*\}', src)
    assert not re.search(r"subgraph inputs \{\s*rank=source\s*x \[", src)  # the input starts the U at the top
    # no fold without clusters at both ends of a skip, or between neighbours
    assert "dir=back" not in to_dot(_spec(tmp_path, EMBED).graph).source
    assert "dir=back" not in to_dot(_spec(tmp_path, SHORTCUTS).graph).source


def test_stdlib_unet_folds_at_every_level():
    src = to_dot(elaborate("unet").graph).source
    level = {(a, b) for a, b, at in edges(src) if "minlen=0" in at}
    assert level == {(f"down{i}.relu2", f"up{i}.center_crop") for i in range(1, 5)}
    assert re.search(r'rank=same\s*"bottom.conv1"\s*"bottom.conv2"\s*"bottom.relu1"\s*"bottom.relu2"\s*pool4', src)


def test_hostile_doc_comments_and_names_cannot_inject_markup(tmp_path):
    checked = _spec(tmp_path, HOSTILE)
    src = to_dot(checked.graph).source
    label = re.search(r"^\tgraph \[.*label=(<<TABLE.*?</TABLE>>)", src, re.M).group(1)  # the title: an HTML-like label
    assert "<script>" not in label and "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in label
    if not shutil.which("dot"):
        pytest.fail("Graphviz's dot is needed (make setup installs it)")
    svg = to_svg(checked.graph)
    root = ET.fromstring(svg)  # well-formed XML
    tags = {el.tag.split("}")[-1] for el in root.iter()}
    assert "script" not in tags and "img" not in tags and "b" not in tags
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on")]
    texts = " ".join(el.text or "" for el in root.iter()) + " ".join(
        v for el in root.iter() for v in el.attrib.values())
    assert "</title><script>alert(1)</script>" in texts  # shown as text, intact
    assert "<img src=x onerror=alert(3)>" in texts
    assert 'Tagged(d=4, tag="</text><script>alert(5)</script>")' in texts
    assert '"><svg onload=alert(2)> {braces} \\ backslash' in texts


def test_views_record_every_visible_node(tmp_path):
    v = build_view(_spec(tmp_path, EMBED).graph)
    assert {"idx", "emb.wte", "attn.c_attn", "head/logits"} <= set(v.nodes)
    assert v.nodes["attn.c_attn"].param_keys == ("attn.c_attn",)
