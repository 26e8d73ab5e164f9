"""How dsl/ is put together: its modules import each other one way (no cycles, no imports
hidden inside functions to dodge one), and nothing outside dsl/ — torch least of all."""
import ast
from pathlib import Path

import networkx as nx

import netspec.dsl

DSL = Path(netspec.dsl.__file__).parent
MODULES = {("netspec.dsl." + ".".join(p.relative_to(DSL).with_suffix("").parts)).removesuffix(".__init__"): p
           for p in sorted(DSL.rglob("*.py"))}


def imports(module: str, path: Path):
    """(imported module, at module level?) for every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import ast as A` imports a module; `from .x import y` imports x
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            yield name, id(node) in top


def test_dsl_modules_import_each_other_one_way():
    g = nx.DiGraph()
    for module, path in MODULES.items():
        g.add_node(module)
        for name, _ in imports(module, path):
            if name in MODULES and name != module:
                g.add_edge(module, name)
    assert nx.is_directed_acyclic_graph(g), f"import cycle: {nx.find_cycle(g)}"
    # the vocabularies stand alone: every stage may read them
    assert not list(g.successors("netspec.dsl.tables")) and not list(g.successors("netspec.dsl.tasks"))


def test_no_imports_of_netspec_hidden_in_functions():
    hidden = [f"{module}: {name}" for module, path in MODULES.items() for name, top in imports(module, path)
              if not top and name.startswith("netspec")]
    assert hidden == []


def test_dsl_imports_nothing_of_the_later_stages_nor_torch():
    outside = [f"{module}: {name}" for module, path in MODULES.items() for name, _ in imports(module, path)
               if name.split(".")[0] == "torch" or name.startswith(("netspec.compiler", "netspec.train"))]
    assert outside == []
