"""Fuzzing: grammar-aware mutations of every shipped spec either check, or fail with
netspec's own errors, each at FILE:LINE:COL, within the time budget. Never a traceback,
an unlocated error, a hang.

hypothesis draws the spec and every choice of the mutations (tests/hostile/mutations.py),
so a failure shrinks to a small mutation; `derandomize` keeps the examples the same from
run to run. bench/fuzz.py runs the same oracle over thousands of cases.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.mutations import mutate
from tests.hostile.oracle import run_case

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(list((ROOT / "stdlib").glob("*.nn")) + list((ROOT / "specs").glob("*.nn")))
BUDGET = 10.0  # seconds a case may take (a loaded CI machine included) before it counts as a hang
FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Import torch and build the grammar once, outside any case's time budget."""
    run_case(SPECS[0].read_text(encoding="utf-8"), deep=True, budget=0)


class _Draws:
    """The mutations' chooser over hypothesis' draws (so failures shrink)."""

    def __init__(self, data):
        self.data = data

    def randrange(self, n: int) -> int:
        return self.data.draw(st.integers(0, n - 1)) if n > 1 else 0


def _mutated(data) -> str:
    spec = data.draw(st.sampled_from(SPECS), label="spec")
    return mutate(spec.read_text(encoding="utf-8"), _Draws(data), count=data.draw(st.integers(1, 3), label="count"))


@settings(max_examples=200, **FUZZ)
@given(data=st.data())
def test_mutated_specs_check_or_fail_with_located_errors(data):
    text = _mutated(data)
    out = run_case(text, budget=BUDGET)
    assert out.kind in ("ok", "error"), f"{out.kind}: {out.detail}\n--- the spec:\n{text}"


@settings(max_examples=30, **FUZZ)
@given(data=st.data())
def test_mutated_specs_that_check_also_eject_and_draw(data):
    """The deep path: a spec that checks is ejected (the source must compile) and drawn as DOT."""
    text = _mutated(data)
    out = run_case(text, deep=True, budget=BUDGET)
    assert out.kind in ("ok", "error"), f"{out.kind}: {out.detail}\n--- the spec:\n{text}"


def test_the_oracle_tells_the_outcomes_apart():
    good = (ROOT / "specs" / "mlp.nn").read_text()
    assert run_case(good).kind == "ok"
    out = run_case(good.replace("Linear(", "Lienar(", 1))
    assert out.kind == "error" and out.detail.startswith("fuzz.nn:") and "unknown layer 'Lienar'" in out.detail
