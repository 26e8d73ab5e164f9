"""The import rule, read from the source: each stage imports only the stages below it.

    netspec (the command, tools) -> train -> compiler -> dsl

`dsl/` never imports torch (parsing, checks and diagrams run without it), and no module
below `train/` imports at its top what only an optional extra brings (an optional feature
imports it inside the function that needs it, and names the extra when it is missing).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# folder -> its package name
PACKAGES = {"netspec": "netspec", "dsl": "netspec.dsl", "compiler": "netspec.compiler", "train": "netspec.train",
            "stdlib": "netspec.stdlib"}
# package -> the netspec packages it may import (itself included)
ALLOWED = {
    "netspec.dsl": {"netspec.dsl"},
    "netspec.compiler": {"netspec.dsl", "netspec.compiler"},
    "netspec.train": {"netspec.dsl", "netspec.compiler", "netspec.train"},
    "netspec": {"netspec", "netspec.dsl", "netspec.compiler", "netspec.train"},
}
OPTIONAL = {"sklearn", "matplotlib", "yaml", "numpy", "PIL", "onnx", "onnxruntime", "onnxscript", "pygls"}
OLD_ROOTS = {"dsl", "compiler", "train", "stdlib"}  # the names of the first release: never imported now


def modules():
    for folder, package in PACKAGES.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            rel = f.relative_to(ROOT / folder).with_suffix("")
            parts = [*package.split("."), *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
                is_pkg = True
            else:
                is_pkg = False
            yield f, ".".join(parts), is_pkg


def imports(path: Path, name: str, is_pkg: bool, *, top_only: bool = False):
    """Absolute names of everything a module imports (relative imports resolved);
    top_only: only what it imports when it is imported (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    nodes = ast.iter_child_nodes(tree) if top_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target == "netspec":  # `from .. import compiler`: the subpackage is what is imported
                for a in node.names:
                    yield f"netspec.{a.name}", node.lineno
            else:
                yield target, node.lineno


def stage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in ALLOWED else parts[0]


ALL = list(modules())


@pytest.mark.parametrize("path,name,is_pkg", ALL, ids=[n for _, n, _ in ALL])
def test_imports_point_down_the_pipeline(path, name, is_pkg):
    own = stage(name)
    if own == "netspec.stdlib":
        return
    bad = []
    for target, line in imports(path, name, is_pkg):
        top = target.split(".")[0]
        where = f"{path.relative_to(ROOT)}:{line}: imports {target}"
        if top in OLD_ROOTS:
            bad.append(f"{where} (import it as netspec.{target} or relatively)")
        elif top == "netspec" and stage(target) not in ALLOWED[own]:
            bad.append(f"{where} ({own} may import only {sorted(ALLOWED[own])})")
        elif own == "netspec.dsl" and top == "torch":
            bad.append(f"{where} (dsl/ never imports torch)")
    for target, line in imports(path, name, is_pkg, top_only=True):
        top = target.split(".")[0]
        if own in ("netspec.dsl", "netspec.compiler") and top in OPTIONAL:
            bad.append(f"{path.relative_to(ROOT)}:{line}: imports {target} at import time "
                       f"({top} comes only with an optional extra)")
    assert not bad, "\n".join(bad)


def test_the_rule_reads_relative_imports():
    """The checker itself: a relative import from compiler/ resolves to netspec.dsl."""
    name = "netspec.compiler.builder"
    found = dict(imports(ROOT / "compiler" / "builder.py", name, False))
    assert "netspec.dsl.frontend" in found and stage("netspec.dsl.frontend") == "netspec.dsl"
    assert stage("netspec.train.data.core") == "netspec.train" and stage("netspec.cli") == "netspec"
