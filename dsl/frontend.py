"""The front end in one call: spec (path, stdlib name or text) -> checked graph IR.

The pipeline: load the spec and its imports (dsl/loader.py), pick the model, elaborate it
into a BlockGraph (dsl/elaborate.py), then run the structural checks (`checks.RULES`) and
the lints (`lints.LINTS`) over every distinct block the elaboration made. Problems of every
stage are collected and raised together as one `NetspecError`; warnings come back with the
result.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ast as A
from .checks import check_block
from .elaborate import Elaborator, Instance
from .errors import Diagnostic, Diagnostics, LimitError, NetspecError, TooManyErrors
from .ir import BlockGraph
from .library import resolve_source
from .lints import lint_block
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
    """Load, elaborate and check one model: `model`, the one `source` names (`ResNet50`),
    the file's default or its only one. Raises NetspecError with every problem."""
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
    checked = check_models(program, [defn], diags, overrides)
    diags.raise_if_errors()
    checked[0].warnings = diags.warnings
    return checked[0]


def check_all(source, *, extra_paths=(), overrides=None) -> tuple[Program, list[Checked], list[Diagnostic]]:
    """Elaborate and check every model of a file (for `netspec check` on a library file)."""
    diags = Diagnostics()
    program = load(source, extra_paths=extra_paths, diags=diags)
    out = check_models(program, program.models(), diags, overrides)
    diags.raise_if_errors()
    return program, out, diags.warnings


def check_models(program: Program, models: list[A.Def], diags: Diagnostics,
                 overrides: dict | None = None) -> list[Checked]:
    """Elaborate `models` of a loaded program (sharing identical blocks), then check their
    structure. Problems go to `diags`, nothing is raised; a model that could not be
    elaborated at all is left out of the result."""
    elab = Elaborator(program, diags)
    out = []
    try:
        for d in models:
            g = elab.model(d, overrides or {})
            if g is not None:
                out.append(Checked(program, d, g, []))
        check_structure(elab.instances, diags)
    except (LimitError, TooManyErrors) as e:  # the graphs are unfinished: no checks, no result
        diags.absorb(e)
        return []
    return out


def check_structure(instances: list[Instance], diags: Diagnostics) -> None:
    """The structural pass: `checks.RULES` over each distinct block, inner blocks first, then
    the lints (`lints.LINTS`) over each block that elaborated cleanly. Problems inside a
    block note where it was instantiated; a block whose elaboration reported errors skips
    the checks that would only echo them."""
    for inst in instances:
        check_block(inst.block, diags.with_notes(inst.notes), errors_so_far=inst.had_errors)
        if not inst.had_errors:
            lint_block(inst.block, diags.with_notes(inst.notes))
