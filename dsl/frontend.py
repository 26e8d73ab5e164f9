"""The front end in one call: spec (path or text) -> checked graph IR.

`elaborate(source, model=None, overrides={})` loads the spec and its imports, picks
the model, elaborates it into a BlockGraph and runs the structural checks. It raises
`NetspecError` carrying every error; warnings come back with the result.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ast as A
from .elaborate import Elaborator
from .errors import Diagnostic, Diagnostics, NetspecError
from .ir import BlockGraph
from .library import resolve_source
from .loader import Program, load, select_model


@dataclass
class Checked:
    program: Program
    defn: A.Def
    graph: BlockGraph
    warnings: list[Diagnostic]

    @property
    def file(self) -> str:
        return self.program.main.file


def elaborate(source, model: str | None = None, overrides: dict | None = None, *, extra_paths=(),
              file: str | None = None) -> Checked:
    diags = Diagnostics()
    source, named_model = resolve_source(source)  # `ResNet50` names a file and a model
    model = model if model is not None else named_model
    program = load(source, extra_paths=extra_paths, file=file, diags=diags)
    try:
        defn = select_model(program, model)
    except NetspecError as e:
        diags.extend(e.diagnostics)
        diags.raise_if_errors()
        raise
    elab = Elaborator(program, diags)
    graph = elab.model(defn, overrides or {})
    diags.raise_if_errors()
    assert graph is not None
    return Checked(program, defn, graph, diags.warnings)


def check_all(source, *, extra_paths=(), overrides=None) -> tuple[Program, list[Checked], list[Diagnostic]]:
    """Elaborate every model of a file (for `netspec check` on a library file)."""
    diags = Diagnostics()
    program = load(source, extra_paths=extra_paths, diags=diags)
    out = []
    elab = Elaborator(program, diags)
    for d in program.models():
        g = elab.model(d, overrides or {})
        if g is not None:
            out.append(Checked(program, d, g, []))
    diags.raise_if_errors()
    return program, out, diags.warnings
