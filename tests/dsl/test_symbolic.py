"""dsl/symbolic.py: numbers that carry the expression that made them, seen as plain numbers
everywhere but in the ejector's `spelling`."""
from __future__ import annotations

import copy
import math
import pickle

from netspec.dsl import symbolic as S


def test_outside_tracing_parameters_stay_plain():
    assert type(S.local(1, "d", 8)) is int


def test_arithmetic_keeps_the_expression_and_the_value():
    with S.tracing():
        d, h, n = S.local(1, "d", 768), S.local(1, "h", 12), S.local(1, "n", 3)
    hs = d // h
    std = S.binary("/", 0.02, S.call("sqrt", [2 * n], math.sqrt))
    assert (hs, type(hs)) == (64, S.Sym) and std == 0.02 / math.sqrt(6) and type(std) is S.SymFloat
    assert (repr(hs), str(hs), f"{hs}", f"{std:.3f}") == ("64", "64", "64", "0.008")  # plain, unless spelled
    with S.spelling({(1, "d"): "self.d", (1, "h"): "h"}) as spelled:
        assert repr(hs) == "self.d // h"
        assert repr(3 * d + 1) == "3 * self.d + 1"
        assert repr(S.binary("**", -3, h)) == "(-3) ** h"  # a negative base keeps its brackets
        assert repr(-(d - 1) * 2) == "-(self.d - 1) * 2"
        # Python asks float first in `0.5 * d` (Sym is an int): the spec's folding calls binary()
        assert repr(S.binary("*", 0.5, d)) == "0.5 * self.d" and repr(0.5 * d) == "384.0"
        assert repr(std) == "0.02 / math.sqrt(2 * 3)"  # n not spelled here: its number
    assert spelled["missing"] == {(1, "n")}
    assert S.call("min", [d, 100], min) == 100 and S.call("range", [n], range) == range(3)


def test_copies_and_pickles_keep_the_expression():
    with S.tracing():
        d = S.local(7, "d", 4)
    for twin in (copy.deepcopy(d * 2), pickle.loads(pickle.dumps(d * 2))):
        with S.spelling({(7, "d"): "d"}):
            assert repr(twin) == "d * 2" and twin == 8


def test_decisions_fix_parameters_and_checks_do_not():
    with S.tracing() as trace:
        d, n = S.local(1, "d", 4), S.local(1, "n", 2)
        with S.checking():
            S.decide(d % 2)
        assert trace.fixed == set()
        S.decide([n + 1])
        assert trace.fixed == {(1, "n")}
    assert S.local(1, "flag", True) is True  # a bool cannot carry an expression: it stays a bool
