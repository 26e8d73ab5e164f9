"""How problems are reported: location, source line and caret, every problem at once."""
import textwrap

import pytest

from netspec.dsl.errors import NetspecError, Source, Span
from netspec.dsl.frontend import elaborate
from netspec.dsl.parser import parse


def spec(text):
    return textwrap.dedent(text).lstrip()


def failure(text, **kw) -> NetspecError:
    with pytest.raises(NetspecError) as e:
        elaborate(spec(text), **kw)
    return e.value


def test_two_texts_with_the_same_name_quote_their_own_lines():
    a = failure("""
        model A():
            input x: float[B=1, 4]
            Lienar(4, 4)
            head y
    """)
    b = failure("""
        model B():
            input x: float[B=1, 4]
            head y = x

            fc: Linaer(4, 4)(x)
    """)
    # formatted only now, after both texts were read: each quotes its own
    assert a.diagnostics[0].format().splitlines() == [
        "<string>:3:5: error: unknown layer 'Lienar' (did you mean 'Linear'?)",
        "        Lienar(4, 4)",
        "        ^~~~~~"]
    assert b.diagnostics[0].format().splitlines() == [
        "<string>:5:9: error: unknown layer 'Linaer' (did you mean 'Linear'?)",
        "        fc: Linaer(4, 4)(x)",
        "            ^~~~~~"]


def test_a_name_given_to_text_appears_in_locations():
    e = failure("""
        model M():
            input x: float[B=1, 4]
            head y = z
    """, file="<editor>")
    assert str(e).splitlines() == ["<editor>:3:14: error: undefined name 'z'",
                                   "        head y = z",
                                   "                 ^"]


def test_syntax_errors_quote_the_text_as_written():
    # recovery blanks the bad statement and parses again; the quote is still the original line
    with pytest.raises(NetspecError) as e:
        parse("model M():\n    input x: float[B=1, 4]\n    fc: Linear(4, 4\n    head y\n    a b c\n")
    lines = str(e.value).splitlines()
    assert lines[0] == "<string>:3:15: error: unclosed '('"
    assert lines[1] == "        fc: Linear(4, 4"
    assert lines[2].index("^") == lines[1].index("(")


def test_spans_without_a_source_quote_the_file(tmp_path):
    f = tmp_path / "m.nn"
    f.write_text("line one\n\tline two\n")
    from netspec.dsl.errors import Diagnostic
    text = Diagnostic("error", "bad", Span(str(f), 2, 2, 2, 6)).format()
    assert text.splitlines()[1:] == ["            line two", "            ^~~~"]
    assert Diagnostic("error", "gone", Span(str(tmp_path / "missing.nn"), 1, 1)).format() == \
        f"{tmp_path / 'missing.nn'}:1:1: error: gone"


def test_source_lines():
    s = Source("<string>", "a\nb\n")
    assert (s.line(1), s.line(2), s.line(3), s.line(0)) == ("a", "b", None, None)
