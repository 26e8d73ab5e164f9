"""Highlighting: the Pygments lexer and the TextMate grammar (run by VS Code's own engine,
vscode-textmate + vscode-oniguruma, from editors/vscode/node_modules) agree with the
parser's lexer on every shipped spec and every doc example: each token the grammar sees
is one highlighted token of the right kind, and nothing is left unhighlighted or an error."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String

from netspec.dsl.highlight import KEYWORDS, MODULES, NetspecLexer, textmate_grammar
from netspec.dsl.registry import REGISTRY
from netspec.dsl.tokens import Token, keywords, label_words, tokenize

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = VSCODE / "syntaxes" / "netspec.tmLanguage.json"
SHIPPED = sorted((ROOT / "stdlib").glob("*.nn")) + sorted((ROOT / "specs").glob("*.nn"))


def _doc_examples() -> dict[str, str]:
    out = {}
    for md in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        for i, m in enumerate(re.finditer(r"```nn\n(.*?)```", md.read_text(), re.S)):
            out[f"{md.name}-{i}"] = m.group(1)
    return out


CORPUS = {f"{p.parent.name}/{p.name}": p.read_text() for p in SHIPPED} | _doc_examples()

# the parser's token -> (Pygments types, TextMate scope prefixes) it may be highlighted as
_OPERATORS = {"ADDOP", "MULOP", "POW", "COMPOP", "EQUAL"}


def _expected(t: Token, before: Token | None, after: Token | None):
    if t.type == "COMMENT":
        return ((Comment.Special,), ("comment.line.double-number-sign.documentation",)) if t.is_doc else \
            ((Comment.Single,), ("comment.line.number-sign",))
    if t.type == "NUMBER":
        return (Number,), ("constant.numeric",)
    if t.type == "STRING":
        return (String,), ("string.quoted",)
    if t.text in label_words() and after is not None and after.type == "COLON":  # `head: Linear(...)`
        return (Name.Label,), ("entity.name.tag.label",)
    if t.is_keyword:
        return (Keyword, Operator.Word), ("keyword.", "storage.")
    if t.type in _OPERATORS:
        return (Operator,), ("keyword.operator",)
    if t.text == "...":
        return (Punctuation,), ("constant.language.ellipsis",)
    if t.type == "NAME":
        if before is not None and before.type in ("BLOCK", "MODEL"):
            return (Name.Class,), ("entity.name.type.class",)
        if t.text in REGISTRY and after is not None and after.type == "LPAR":
            return (Name.Builtin,), ("support.class.layer" if t.text in MODULES else "support.function.op",)
        return (Name, Keyword.Constant, Keyword.Type), ("variable.", "entity.name.", "support.", "constant.language",
                                                        "storage.type.dtype")
    return (Punctuation,), ("punctuation.",)


def _code_tokens(text: str):
    toks = [t for t in tokenize(text) if t.type != "NEWLINE"]
    for i, t in enumerate(toks):
        yield t, toks[i - 1] if i else None, toks[i + 1] if i + 1 < len(toks) else None


def test_the_lexer_is_registered_for_nn_files():
    assert isinstance(get_lexer_for_filename("resnet.nn"), NetspecLexer)
    assert isinstance(get_lexer_by_name("netspec"), NetspecLexer)
    assert isinstance(get_lexer_by_name("nn"), NetspecLexer)


def test_reserved_words_are_the_grammars():
    assert set(KEYWORDS) == keywords()
    assert len(KEYWORDS) == len(set(KEYWORDS))


@pytest.mark.parametrize("name", list(CORPUS))
def test_pygments_highlights_every_token_as_its_kind(name):
    text = CORPUS[name]
    spans = {i: (tt, v) for i, tt, v in NetspecLexer().get_tokens_unprocessed(text)}
    assert "".join(v for _, v in spans.values()) == text
    assert not [v for tt, v in spans.values() if tt in Error], "error tokens"
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for t, before, after in _code_tokens(text):
        at = starts[t.line - 1] + t.col - 1
        assert at in spans, f"{name}:{t.line}:{t.col}: {t.text!r} does not start a token"
        ttype, value = spans[at]
        kinds, _ = _expected(t, before, after)
        assert value == t.text and any(ttype in k for k in kinds), \
            f"{name}:{t.line}:{t.col}: {t.text!r} highlighted as {ttype} {value!r}, expected one of {kinds}"


def test_pygments_never_fails_on_half_written_code():
    text = 'model M(d=4:\n    fc: Linear(d, "unclosed\n    $ y = {\n'
    toks = list(NetspecLexer().get_tokens(text))
    assert "".join(v for _, v in toks) == text


def test_the_textmate_grammar_is_generated_from_the_tables():
    assert json.loads(GRAMMAR.read_text()) == textmate_grammar(), \
        "run: python -m netspec.dsl.highlight > editors/vscode/syntaxes/netspec.tmLanguage.json"
    manifest = json.loads((VSCODE / "package.json").read_text())
    assert manifest["contributes"]["grammars"][0]["scopeName"] == textmate_grammar()["scopeName"]
    assert manifest["contributes"]["languages"][0]["extensions"] == [".nn"]


@pytest.fixture(scope="module")
def textmate(tmp_path_factory):
    """name -> per line, [start, end, scopes] from VS Code's TextMate engine."""
    assert shutil.which("node"), "Node.js is not installed: `make setup` installs it (the TextMate grammar is " \
        "tested with VS Code's own engine)"
    assert (VSCODE / "node_modules" / "vscode-textmate").is_dir(), \
        "vscode-textmate is missing: run `make setup` (npm ci --prefix editors/vscode)"
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for i, (name, text) in enumerate(CORPUS.items()):
        files[name] = folder / f"{i}.nn"
        files[name].write_text(text)
    run = subprocess.run(["node", "test/tokenize.js", str(GRAMMAR), *map(str, files.values())], cwd=VSCODE,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = json.loads(run.stdout)
    return {name: lines[str(path)] for name, path in files.items()}


@pytest.mark.parametrize("name", list(CORPUS))
def test_textmate_highlights_every_token_as_its_kind(name, textmate):
    text, lines = CORPUS[name], textmate[name]
    for n, (line, toks) in enumerate(zip(text.split("\n"), lines), 1):
        for start, end, scopes in toks:
            if line[start:end].strip():
                assert len(scopes) > 1, f"{name}:{n}:{start + 1}: {line[start:end]!r} has no scope"
    for t, before, after in _code_tokens(text):
        found = [(s, e, sc) for s, e, sc in lines[t.line - 1] if s == t.col - 1]
        assert found and found[0][1] == t.end_col - 1, f"{name}:{t.line}:{t.col}: {t.text!r} is not one token"
        _, prefixes = _expected(t, before, after)
        scope = found[0][2][-1]
        assert scope.startswith(prefixes), f"{name}:{t.line}:{t.col}: {t.text!r} scoped {scope}, expected {prefixes}"


def test_the_vscode_extension_entry_point_loads_its_client_library():
    assert shutil.which("node"), "Node.js is not installed: `make setup` installs it"
    run = subprocess.run(["node", "-e", "require.resolve('vscode-languageclient/node')"], cwd=VSCODE,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert subprocess.run(["node", "--check", "extension.js"], cwd=VSCODE).returncode == 0
