"""`netspec fmt`: the canonical layout, comments kept, meaning unchanged, idempotent."""
import re
from pathlib import Path

import pytest

from netspec.cli import main
from netspec.dsl.errors import NetspecError
from netspec.dsl.format import LINE_LENGTH, format_markdown, format_text
from netspec.dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "stdlib").glob("*.nn")) + sorted((ROOT / "specs").glob("*.nn"))
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def body(*lines: str) -> str:
    """A model around the given statements (4-space indented)."""
    return "model M(d=4):\n" + "".join(f"    {ln}\n" if ln else "\n" for ln in lines)


# statement as written -> its canonical form
SPACING = [
    ("input x:float[ B = 2 ,d ]", "input x: float[B=2, d]"),
    ("fc1 : Linear( d , d , bias = false )", "fc1: Linear(d, d, bias=false)"),
    ("y=x*2+1", "y = x * 2 + 1"),
    ("y = x**2", "y = x ** 2"),
    ("y = - x + ( -1 )", "y = -x + (-1)"),
    ("y = x [ : , - 1 , 1 : 3 ]", "y = x[:, -1, 1:3]"),
    ("y = x [ ... , 0 ]", "y = x[..., 0]"),
    ("+ x", "+x"),
    ("@ v as w", "@v as w"),
    ("* ( x + 1 )", "*(x + 1)"),
    ("a,b = chunk( x ,2 ,dim = 1 )", "a, b = chunk(x, 2, dim=1)"),
    ("y = x.view( 2 , -1 ).T", "y = x.view(2, -1).T"),
    ("Linear(d,d) ;ReLU( ) ; Dropout(0.1)", "Linear(d, d); ReLU(); Dropout(0.1)"),
    ("z = 1 if d>2 and not d==3 else -1", "z = 1 if d > 2 and not d == 3 else -1"),
    ("assert d in [ 1,2 ] , 'bad'", "assert d in [1, 2], 'bad'"),
    ("fc{ i+1 } : Linear(d, d)", "fc{ i+1 }: Linear(d, d)"),
    ("t = ( 1 , )", "t = (1,)"),
    ("t = ( 1 , 2 , )", "t = (1, 2)"),
    ("l = [ 1 , ]", "l = [1]"),
    ("y = Linear( d , d , )( x )", "y = Linear(d, d)(x)"),
    ("head out : classify( weight = 0.5 )", "head out: classify(weight=0.5)"),
    ("act: Tanh() if d==4 else ReLU()", "act: Tanh() if d == 4 else ReLU()"),
    ("0 : Linear( d , d )", "0: Linear(d, d)"),
    ("{ i } : Linear(d, d)", "{ i }: Linear(d, d)"),
    ("head : Linear( d , d )", "head: Linear(d, d)"),
    ("output :Linear(d,d)", "output: Linear(d, d)"),
    ("_+x", "_ + x"),
    ("_ [ : , 0 ]", "_[:, 0]"),
    ("_*s as y", "_ * s as y"),
    ("x.transpose( 1,2 )", "x.transpose(1, 2)"),
    ("y = x*2 if training else x", "y = x * 2 if training else x"),
    ("LSTM(d,d,return_state = true)( x ,( h , c ))", "LSTM(d, d, return_state=true)(x, (h, c))"),
]


@pytest.mark.parametrize("written, canonical", SPACING, ids=[c for _, c in SPACING])
def test_spacing(written, canonical):
    assert format_text(body(written)) == body(canonical)


def test_numbered_and_reserved_groups_keep_their_bodies():
    text = body("features :", "        0 :", "            block:", "                Linear(d,d)", "head out")
    assert format_text(text) == body("features:", "    0:", "        block:", "            Linear(d, d)",
                                     "head out")
    assert format_text(format_text(text)) == format_text(text)


def test_indentation_blank_lines_and_comment_levels():
    src = ("\n\n## The file.\n\nimport resnet\n"
           "block B(d):\n"
           "  #a comment\n"
           "  Linear(d, d)\n"
           "  if d > 2:\n"
           "\tReLU()\n"
           "\t# still inside the if\n"
           "  # back at the block's level\n"
           "  Dropout(0.1)\n\n\n\n"
           "  Tanh()\n"
           "model M():\n"
           "  input x: float[B=1, 4]\n"
           "  B(4)\n"
           "  head y\n"
           "model N = M()\n"
           "model O = M()\n"
           "# the end\n\n\n")
    assert format_text(src) == (
        "## The file.\n\nimport resnet\n\n"
        "block B(d):\n"
        "    # a comment\n"
        "    Linear(d, d)\n"
        "    if d > 2:\n"
        "        ReLU()\n"
        "        # still inside the if\n"
        "    # back at the block's level\n"
        "    Dropout(0.1)\n\n"
        "    Tanh()\n\n"
        "model M():\n"
        "    input x: float[B=1, 4]\n"
        "    B(4)\n"
        "    head y\n\n"
        "model N = M()\n"
        "model O = M()\n"
        "# the end\n")


def test_blank_line_goes_above_the_comments_of_a_definition():
    src = "model A():\n    input x: [1]\n    head y\n## B's doc\nmodel B():\n    input x: [1]\n    head y\n"
    out = format_text(src)
    assert "    head y\n\n## B's doc\nmodel B():\n" in out
    assert parse(out).defs[1].doc == "B's doc"


def test_trailing_comments_align_per_paragraph():
    src = body("input x: float[B=1, d]  # the input",
               "fc: Linear(d, d) # a layer",
               "ReLU()",
               "y = _    # the flow",
               "",
               "head y # out")
    assert format_text(src) == body("input x: float[B=1, d]  # the input",
                                    "fc: Linear(d, d)        # a layer",
                                    "ReLU()",
                                    "y = _                   # the flow",
                                    "",
                                    "head y  # out")


def test_a_much_wider_line_keeps_its_comment_out_of_the_column():
    wide = "fc: Linear(d, d, bias=false, init=normal(0.02), bias_init=zeros, frozen=false)"
    out = format_text(body(f"{wide}  # wide", "ReLU()  # narrow", "Tanh()  # narrow too"))
    assert out == body(f"{wide}  # wide", "ReLU()  # narrow", "Tanh()  # narrow too")


def test_a_column_that_pushes_a_comment_past_the_limit_drops_the_widest_line():
    wide = "y = x + x + x + x + x + x + x + x + x + x + x + x + x"  # 4 + 53 columns
    narrow = "z = x + x + x + x + x + x + x"  # 4 + 29: within OUTLIER of nothing else
    comment = "# " + "c" * 50
    out = format_text(body("input x: float[B=1, d]", f"{wide}  # w", f"{narrow}  {comment}"))
    lines = out.splitlines()
    assert lines[2] == f"    {wide}  # w"
    assert lines[3] == f"    {narrow}  {comment}"  # aligned with the wide line it would pass 100


def test_comment_text_gets_a_space_after_the_hashes():
    out = format_text("#plain\n##doc\n\nmodel M():  ##header doc\n    input x: [1]  #why\n    head y\n")
    assert out.splitlines()[:5] == ["# plain", "## doc", "", "model M():        ## header doc",
                                    "    input x: [1]  # why"]
    assert parse(out).defs[0].doc == "header doc"


def test_long_argument_lists_fill_lines_aligned_after_the_bracket():
    args = ", ".join(f"arg{i}=value{i}" for i in range(12))
    out = format_text(f"model Wide({args}):\n    input x: [1]\n    head y\n")
    first, second = out.splitlines()[:2]
    assert first == "model Wide(arg0=value0, arg1=value1, arg2=value2, arg3=value3, arg4=value4, arg5=value5,"
    assert second == "           arg6=value6, arg7=value7, arg8=value8, arg9=value9, arg10=value10, arg11=value11):"
    assert all(len(line) <= LINE_LENGTH for line in out.splitlines())


def test_an_argument_too_long_for_its_line_wraps_inside_its_own_brackets():
    inner = ", ".join(f"k{i}={i}" for i in range(20))
    out = format_text(body(f"conv: Conv2d(d, d, 3, init=kaiming({inner}), bias=false)"))
    assert out.splitlines()[1:] == [
        "    conv: Conv2d(d, d, 3,",
        "                 init=kaiming(k0=0, k1=1, k2=2, k3=3, k4=4, k5=5, k6=6, k7=7, k8=8, k9=9, k10=10,",
        "                              k11=11, k12=12, k13=13, k14=14, k15=15, k16=16, k17=17, k18=18,",
        "                              k19=19), bias=false)",
    ]


def test_wrapped_lines_are_joined_when_they_fit():
    out = format_text(body("fc: Linear(d,", "           d,", "           bias=false)   # joined"))
    assert out == body("fc: Linear(d, d, bias=false)  # joined")


def test_a_part_without_brackets_goes_on_a_backslash_continuation_line():
    cond = "d == 1 or (d == 2 and d == 3) or (d == 4 and d == 5)"
    message = '"d must be one of the few values this block was written for, not any other"'
    out = format_text(body(f"assert {cond}, \\", f"    {message}  # why"))
    assert out == body(f"assert {cond}, \\", f"    {message}  # why")
    assert format_text(body(f"assert {cond}, {message}")) == body(f"assert {cond}, \\", f"    {message}")


def test_comments_inside_brackets_stay_where_they_were():
    src = body("fc: Linear(d,  # in",
               "     d,     # out",
               "     # a comment line of its own",
               "     bias=false)  # end")
    assert format_text(src) == body("fc: Linear(d,           # in",
                                    "           d,           # out",
                                    "           # a comment line of its own",
                                    "           bias=false)  # end")


def test_trailing_comma_comment_moves_to_the_item_before():
    assert format_text(body("y = f(x,", "      d,  # last", ")")) == body("y = f(x, d  # last", "      )")


def test_doc_comments_document_the_same_statements_after_rewrapping():
    src = ("model M(a=1,\n"
           "        b=2):  ## the model\n"
           "    input x: float[B=1, 3]\n"
           "    y = Linear(3,\n"
           "               3)(x)  ## y\n"
           "    head y\n")
    out = format_text(src)
    assert out == ("model M(a=1, b=2):       ## the model\n"
                   "    input x: float[B=1, 3]\n"
                   "    y = Linear(3, 3)(x)  ## y\n"
                   "    head y\n")
    before, after = parse(src), parse(out)
    assert before.defs[0].doc == after.defs[0].doc == "the model"
    assert before.defs[0].body[1].doc == after.defs[0].body[1].doc == "y"


def test_a_doc_block_opening_a_wrapped_header_documents_the_block():
    src = "model M(a=1,\n        b=2):\n    ## the doc\n    input x: float[B=1, 3]\n    head y\n"
    assert parse(src).defs[0].doc == "the doc"
    assert parse(format_text(src)).defs[0].doc == "the doc"


def test_syntax_errors_are_reported_not_formatted():
    with pytest.raises(NetspecError) as e:
        format_text("model M(:\n    head y\n", "bad.nn")
    assert str(e.value.diagnostics[0]).startswith("bad.nn:1:9: error: unclosed '('")


def test_empty_and_comment_only_files():
    assert format_text("") == ""
    assert format_text("\n\n") == ""
    assert format_text("# just a note   \n\n\n") == "# just a note\n"


def test_markdown_blocks_are_formatted_in_place_and_errors_name_the_markdown_line():
    md = "# Title\n\nSome text.\n\n```nn\nmodel M():\n  input x:[1]\n  head y\n```\n\n```python\nx=1\n```\n"
    assert format_markdown(md) == md.replace("  input x:[1]\n  head y", "    input x: [1]\n    head y")
    with pytest.raises(NetspecError) as e:
        format_markdown("text\n\n```nn\nmodel M(:\n```\n", "doc.md")
    assert str(e.value.diagnostics[0]).startswith("doc.md:4:9: error:")


def _examples():
    for md in DOCS:
        text = md.read_text()
        for i, m in enumerate(re.finditer(r"```nn\n(.*?)```", text, re.S)):
            yield pytest.param(m.group(1), id=f"{md.name}-{i}")


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED])
def test_formatting_is_idempotent_on_shipped_specs(path):
    once = format_text(path.read_text(), str(path))
    assert format_text(once, str(path)) == once
    assert all(len(line) <= LINE_LENGTH or "#" in line or "\\" in line for line in once.splitlines())


@pytest.mark.parametrize("text", list(_examples()))
def test_formatting_is_idempotent_on_doc_examples(text):
    once = format_text(text)
    assert format_text(once) == once


# ---- the command ----
def test_fmt_rewrites_files_in_place_and_reports_them(tmp_path, capsys):
    messy, clean = tmp_path / "messy.nn", tmp_path / "clean.nn"
    messy.write_text("model M():\n  input x:[1]\n  head y\n")
    clean.write_text("model M():\n    input x: [1]\n    head y\n")
    assert main(["fmt", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"reformatted {messy}", "1 file reformatted, 1 file unchanged"]
    assert messy.read_text() == clean.read_text()


def test_fmt_check_and_diff_change_nothing(tmp_path, capsys):
    f = tmp_path / "m.nn"
    f.write_text("model M():\n  input x:[1]\n  head y\n")
    assert main(["fmt", "--check", str(f)]) == 1
    assert capsys.readouterr().err == f"would reformat {f}\n"
    assert main(["fmt", "--diff", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"--- {f} (original)\n+++ {f} (formatted)\n" in out
    assert "-  input x:[1]\n" in out and "+    input x: [1]\n" in out
    assert f.read_text() == "model M():\n  input x:[1]\n  head y\n"
    f.write_text(format_text(f.read_text()))
    assert main(["fmt", "--check", str(f)]) == 0


def test_fmt_errors_exit_1_and_other_files_are_still_formatted(tmp_path, capsys):
    bad, good = tmp_path / "a.nn", tmp_path / "b.nn"
    bad.write_text("model M(:\n")
    good.write_text("model M():\n  input x:[1]\n  head y\n")
    assert main(["fmt", str(bad), str(good), str(tmp_path / "missing.nn")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:1:9: error: unclosed '('" in err
    assert f"error: no such file: {tmp_path / 'missing.nn'}" in err
    assert "1 file reformatted, 0 files unchanged, 2 files failed" in err
    assert good.read_text().startswith("model M():\n    input x: [1]")


def test_fmt_reads_standard_input(monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("model M():\n  input x:[1]\n  head y\n"))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == "model M():\n    input x: [1]\n    head y\n"


def test_shipped_specs_and_doc_examples_are_formatted(capsys):
    """`netspec fmt stdlib specs README.md docs` has been run (run it again after editing them)."""
    files = [str(p) for p in SHIPPED + DOCS]
    assert main(["fmt", "--check", *files]) == 0, capsys.readouterr().err
