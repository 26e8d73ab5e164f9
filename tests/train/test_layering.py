"""Imports run one way: training uses the compiler's and the language's public names only,
and nothing in compiler/ or dsl/ imports training."""
from __future__ import annotations

import ast
from pathlib import Path

import netspec.compiler

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path, package: str):
    """(absolute module, imported names) of every import in a file of `package`."""
    tree = ast.parse(path.read_text())
    parts = (package + "." + ".".join(path.relative_to(ROOT).with_suffix("").parts[1:])).split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module, tuple(a.name for a in node.names)


def files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def test_compiler_and_dsl_never_import_training():
    for folder, package in (("compiler", "netspec.compiler"), ("dsl", "netspec.dsl")):
        for f in files(folder):
            for module, names in imports(f, package):
                assert not module.startswith("netspec.train"), f
                assert not (module == "netspec" and "train" in names), f


def test_training_uses_public_names_of_the_compiler_and_the_language():
    for f in files("train"):
        for module, names in imports(f, "netspec.train"):
            if module.startswith("netspec.compiler"):
                assert module == "netspec.compiler" and set(names) <= set(netspec.compiler.__all__), (f, module, names)
            if module.startswith(("netspec.compiler", "netspec.dsl")):
                assert not any(n.startswith("_") for n in names), (f, module, names)
        text = f.read_text()
        assert "_netspec_graph" not in text and "compiler.shapes" not in text, f
