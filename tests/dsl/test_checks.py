"""The structural pass (dsl/checks.py RULES), run by the front end after elaboration over
every distinct block: cycles, unused results, heads that ignore the inputs, model inputs."""
import textwrap

import pytest

from netspec.dsl import checks
from netspec.dsl.errors import Diagnostics, NetspecError
from netspec.dsl.frontend import check_all, check_models, elaborate
from netspec.dsl.loader import load


def spec(text):
    return textwrap.dedent(text).lstrip()


def report(text) -> list[str]:
    """Every problem, formatted without the quoted lines: 'LINE:COL: severity: message'
    followed by '  note LINE:COL: message' for its notes."""
    diags = Diagnostics()
    program = load(spec(text), diags=diags)
    check_models(program, program.models(), diags)
    out = []
    for d in diags.items:
        out.append(f"{d.span.line}:{d.span.col}: {d.severity}: {d.message}")
        out += [f"  note {s.line}:{s.col}: {m}" for s, m in d.notes]
    return out


def test_rules_are_one_ordered_tuple():
    assert [r.__name__ for r in checks.RULES] == ["check_cycles", "check_unused", "check_heads_reachable",
                                                  "check_model_inputs"]


def test_a_cycle_inside_a_block_notes_where_it_was_used():
    assert report("""
        block Loop(d):
            input x
            a: Linear(d, d)(b)
            b: Linear(d, d)(a)
            output o = b + x
        model M():
            input x: float[B=1, 4]
            l: Loop(4)
            head y
    """) == ["3:5: error: cycle in the graph: a -> b -> a",
             "  note 4:5: 'b' is part of the cycle",
             "  note 8:5: in block 'Loop' instantiated here"]


def test_structure_is_checked_after_elaboration():
    # the name error comes from elaboration, the unused input from the pass that follows it
    assert report("""
        block Blk(d):
            input x
            input unused
            Linear(d, d)(x)
        model M():
            input x: float[B=1, 4]
            b: Blk(4)(x, x)
            head y = q
    """) == ["8:14: error: undefined name 'q'",
             "3:5: warning: input 'unused' is never used",
             "  note 7:5: in block 'Blk' instantiated here"]


def test_unused_results_after_an_error_are_not_reported():
    # a step that failed leaves its input unused: that warning would only echo the error
    assert report("""
        model M():
            input x: float[B=1, 4]
            Linear(4, 4, bias=maybe)
            head y = x
    """) == ["3:23: error: undefined name 'maybe'"]


def test_a_shared_block_is_checked_once():
    lines = report("""
        block Blk(d):
            input x
            input unused
            Linear(d, d)(x)
        model M():
            input x: float[B=1, 4]
            a: Blk(4)(x, x)
            b: Blk(4)(a, a)
            head y
    """)
    assert lines == ["3:5: warning: input 'unused' is never used", "  note 7:5: in block 'Blk' instantiated here"]


def test_heads_and_model_inputs():
    assert report("""
        model M():
            input x: float[B=1, 4]
            input t: float[B, T]
            w: Parameter(4, init=ones)
            head out = w
            head other = x + t
    """) == ["5:5: error: head 'out' does not depend on any input",
             "3:5: error: dim 'T' of input 't' needs a default so the model checks without flags: write T=<size>"]
    assert report("""
        model M():
            w: Parameter(4)
            head out = w
    """) == ["3:5: error: head 'out' does not depend on any input",
             "1:1: error: model 'M' has no input: declare one, e.g. `input x: float[B=1, 3, 32, 32]`"]


def test_elaborate_raises_every_problem_and_returns_warnings():
    c = elaborate(spec("""
        model M():
            input x: float[B=1, 4]
            g: Linear(4, 4)
            h: Linear(4, 4)(x)
            head y
    """))
    assert [str(w.span) + ": " + w.message for w in c.warnings] == ["<string>:3:5: result of 'g' is never used"]
    with pytest.raises(NetspecError) as e:
        elaborate(spec("""
            model M():
                input x: float[B=1, 4]
                a: Linear(4, 4)(b)
                b: Linear(4, 4)(a)
                head y = c
        """))
    assert [d.message for d in e.value.diagnostics] == ["undefined name 'c'", "cycle in the graph: a -> b -> a"]


def test_check_all_checks_every_model_of_a_file():
    program, checked, warnings = check_all(spec("""
        block Blk(d):
            fc: Linear(d, d)
        model One():
            input x: float[B=1, 4]
            Blk(4)
            head y
        model Two():
            input x: float[B=1, 4]
            input z: float[B=1, 4]
            Blk(4)
            head y
    """))
    assert [c.graph.name for c in checked] == ["One", "Two"]
    assert checked[0].graph.op("blk").block is checked[1].graph.op("blk").block
    assert [w.message for w in warnings] == ["input 'z' is never used"]
