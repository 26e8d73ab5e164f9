"""No spec runs code: spec text written into other languages stays data.

`netspec compile` writes Python a user imports: doc comments, string parameters, file
names, names all go in as escaped literals (compiler/pysource.py). Each payload below
would close the string it lands in; the ejected module must import with no side effect
and give the text back unchanged. DOT and SVG are checked the same way.
"""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import xml.etree.ElementTree as ET

import pytest

from netspec.compiler.eject import eject
from netspec.compiler.pysource import attribute, comment, docstring, identifier, literal
from netspec.dsl.errors import NetspecError

RUN = 'import pathlib; pathlib.Path(r"{marker}").write_text("code ran")'
# text -> where it goes; each would end its string and run RUN if pasted in raw
PAYLOADS = [
    '"""; {run}; _ = """',
    "'''; {run}; _ = '''",
    '\\"""; {run}; _ = """\\',
    'ends with a backslash \\',
    '\\N{{BULLET}} \\x41 \\u0041 \\\\ stay text',
    '""""""; {run} #',
    'a lone \r carriage return; {run}',
    'line\u2028separator """; {run}; """',
    '\x1b[2J escape \x00 nul',
]


def _doc_spec(payload: str) -> str:
    return (f"## {payload}\n\n## block doc {payload}\nblock Blk(s='{payload.replace(chr(39), '')}'):\n"
            f"    fc: Linear(4, 4)\n\n"
            f"model M(t=\"{payload.replace(chr(34), '')}\"):\n    input x: float[B=1, 4]\n    blk: Blk()\n    head y\n")


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _only_data(source: str) -> None:
    """The ejected module's top level: its docstring, the fixed imports, definitions."""
    tree = ast.parse(source)
    imports = {ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert imports == {"import math", "import torch", "from torch import nn", "from torch.nn import functional as F"}
    for node in tree.body[1:]:
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef, ast.ClassDef)), \
            ast.unparse(node)[:200]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for node in cls.body[1:]:
            assert isinstance(node, ast.FunctionDef), ast.unparse(node)[:200]


@pytest.mark.parametrize("i", range(len(PAYLOADS)))
def test_ejected_code_imports_without_running_spec_text(tmp_path, i):
    marker = tmp_path / "PWNED"
    payload = PAYLOADS[i].format(run=RUN.format(marker=marker))
    spec = tmp_path / "spec.nn"
    spec.write_text(_doc_spec(payload), encoding="utf-8", newline="")
    try:
        code = eject(spec)
    except NetspecError as e:  # a payload the language refuses (a NUL byte) is refused at its place
        assert all(d.span is not None for d in e.errors), e
        return
    _only_data(code)
    out = tmp_path / f"ejected_{i}.py"
    out.write_text(code, encoding="utf-8")
    module = _import(out, f"ejected_{i}")
    assert not marker.exists(), "spec text ran as code"
    first_doc_line = payload.strip()
    assert module.__doc__.startswith(first_doc_line.split("\r")[0][:20])
    assert payload in module.Blk.__doc__  # the block's doc comes back as written
    assert "s=" in module.Blk.__doc__


def test_doc_comment_payload_of_the_issue(tmp_path):
    marker = tmp_path / "PWNED"
    spec = tmp_path / "mlp.nn"
    spec.write_text(f'## A tiny MLP."""; {RUN.format(marker=marker)}; _ = """\n\n'
                    "model MLP(d=4):\n    input x: float[B=1, d]\n    fc: Linear(d, d)\n    head y\n")
    out = tmp_path / "model.py"
    out.write_text(eject(spec))
    module = _import(out, "model_issue")
    assert not marker.exists()
    assert module.__doc__.startswith(f'A tiny MLP."""; {RUN.format(marker=marker)}; _ = """')
    assert module.MLP()(__import__("torch").zeros(1, 4)).shape == (1, 4)


def test_a_file_name_is_data_too(tmp_path):
    marker = tmp_path / "PWNED"
    folder = tmp_path / f'x"""; {RUN.format(marker=marker)}; """'.replace("/", "_")
    folder.mkdir()
    spec = folder / "m.nn"
    spec.write_text("model M():\n    input x: float[B=1, 4]\n    Linear(4, 4)\n    head y\n")
    out = tmp_path / "byname.py"
    out.write_text(eject(spec))
    _import(out, "byname")
    assert not marker.exists()


def test_names_that_are_python_keywords(tmp_path):
    spec = tmp_path / "kw.nn"
    spec.write_text("block class(d):\n    fc: Linear(d, d)\n\nmodel lambda():\n    input x: float[B=1, 4]\n"
                    "    b: class(4)\n    head y\n")
    out = tmp_path / "kw.py"
    out.write_text(eject(spec))
    module = _import(out, "kw_names")
    assert module.lambda_.__name__ == "lambda_" and module.class_.__name__ == "class_"


def test_the_helpers():
    for text in ['"""', "'''", "\\", "a\\", "\\N{BULLET}", "\x00\r\u2028", 'x"', "line\n  two"]:
        assert ast.literal_eval(docstring(text)) == text
        assert ast.literal_eval(literal(text)) == text
        assert "\n" not in comment(text)
    assert docstring("a\nb", "    ") == '    """a\n    b"""'
    assert identifier("None") == "None_" and identifier("fc") == "fc"
    with pytest.raises(ValueError):
        identifier("a); import os; (")
    assert attribute("self", "blocks.0.attn") == "self.blocks[0].attn"
    assert attribute("self", "a.class") == "getattr(self.a, 'class')"


def test_diagrams_keep_spec_text_as_text(tmp_path):
    from netspec.compiler.builder import analyze
    from netspec.compiler.diagram import diagram_data
    from netspec.dsl.render import to_dot, to_svg

    doc = '<script>alert(1)</script> "]; evil [label=<x>]; & \\'
    spec = tmp_path / "d.nn"
    spec.write_text(f"## {doc}\n\n## {doc}\nblock Blk(s=\"</TD></TR></TABLE>>]; x [\"):\n    fc: Linear(4, 4)\n\n"
                    "model M():\n    input x: float[B=1, 4]\n    blk: Blk()\n    head y\n")
    a = analyze(spec)
    svg = to_svg(a.graph, **diagram_data(a, shapes=True, params=True))
    root = ET.fromstring(svg)
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    assert not tags & {"script", "foreignObject", "iframe"}
    texts = " ".join(el.text or "" for el in root.iter() if el.tag.endswith("text"))
    assert "<script>alert(1)</script>" in texts  # shown as text
    source = to_dot(a.graph, **diagram_data(a, shapes=True, params=True)).source
    assert 'evil [label=' not in source.replace('&quot;', '"').split("label=<<")[0]  # no node of its own
    assert subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True).returncode == 0


def test_a_group_with_named_and_numbered_members(tmp_path):
    """Paths that are not Python names (a member numbered beside a named one) go in as strings."""
    spec = tmp_path / "grp.nn"
    spec.write_text("model M():\n    input x: float[B=1, 4]\n    g:\n        fc: Linear(4, 4)\n        ReLU()\n"
                    "    head y\n")
    code = eject(spec)
    assert "**{'1': nn.ReLU()}" in code
    out = tmp_path / "grp_model.py"
    out.write_text(code)
    module = _import(out, "grp_model")
    import torch
    assert sorted(module.M().state_dict()) == ["g.fc.bias", "g.fc.weight"]
    assert module.M()(torch.zeros(1, 4)).shape == (1, 4)
