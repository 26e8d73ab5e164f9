"""Syntax highlighting for Pygments: `NetspecLexer`, registered for `*.nn` through the
`pygments.lexers` entry point (pyproject.toml), so `pygmentize spec.nn`, Sphinx
(`.. code-block:: netspec`) and any Pygments-based tool highlight specs.

A regex lexer, as highlighters must be: it never fails on half-written code. Its words come
from the language's own tables: the registry's layers and tensor ops, the head tasks, the
constants, the run-time names (`training`) and the input dtypes; the reserved words are
checked against the grammar by the tests. editors/vscode/syntaxes/netspec.tmLanguage.json is
the TextMate twin of this file.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String,
                            Text, Whitespace)

from .tables import CONSTANTS, DTYPES, RUNTIME
from .registry import REGISTRY
from .tasks import TASKS
from .tokens import label_words

DECLARATIONS = ("block", "model", "default")  # open a definition
STATEMENTS = ("input", "output", "head")  # declare a definition's inputs and outputs
NAMESPACE = ("import", "from", "as")
CONTROL = ("if", "elif", "else", "for", "repeat", "residual", "pass", "assert")
WORD_OPERATORS = ("and", "or", "not", "in")
KEYWORDS = DECLARATIONS + STATEMENTS + NAMESPACE + CONTROL + WORD_OPERATORS

MODULES = tuple(sorted(n for n, d in REGISTRY.items() if d.is_module))
FUNCTIONS = tuple(sorted(n for n, d in REGISTRY.items() if not d.is_module))

# the grammar's NAME: `{expr}` holes fill in names, and may start one (`{i}: Linear(d, d)`)
_NAME = r"(?:[A-Za-z_]\w*|\{[^{}\n]*\}\w*)(?:\{[^{}\n]*\}\w*)*"
# `fc1:` and `head:` name a step; `else:` is no label
_NOT_LABELS = tuple(k for k in KEYWORDS if k not in label_words())
_LABEL = rf"(?!(?:{'|'.join(_NOT_LABELS)})\b){_NAME}"


class NetspecLexer(RegexLexer):
    """Lexer for netspec `.nn` specs (neural network architectures)."""

    name = "netspec"
    aliases = ["netspec", "nn"]
    filenames = ["*.nn"]
    mimetypes = ["text/x-netspec"]
    url = "https://pypi.org/project/netspec-nn/"

    tokens = {
        "root": [
            (r"\n", Whitespace),
            # before the indentation is taken as whitespace: a label starts its line
            (rf"^([^\S\n]*)({_LABEL})([^\S\n]*)(:)", bygroups(Whitespace, Name.Label, Whitespace, Punctuation)),
            (r"[^\S\n]+", Whitespace),
            (r"\\\n", Text),  # a line continuation
            include("comments"),
            (rf"(?:(default)(\s+))?(block|model)\b(\s+)({_NAME})",
             bygroups(Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class)),
            (rf"(;)([^\S\n]*)({_LABEL})([^\S\n]*)(:)",
             bygroups(Punctuation, Whitespace, Name.Label, Whitespace, Punctuation)),
            (rf"(head)\b(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Variable), "head"),
            (rf"(input|output)\b(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Variable)),
            include("expr"),
        ],
        "head": [  # `head NAME [= expr] [: task(args)]`, to the end of the line
            (r"(?=\n)", Whitespace, "#pop"),
            (rf"(:)(\s*)({'|'.join(TASKS)})\b", bygroups(Punctuation, Whitespace, Name.Builtin)),
            (r"[^\S\n]+", Whitespace),
            include("comments"),
            include("expr"),
        ],
        "comments": [
            (r"##.*?$", Comment.Special),  # a doc comment: summaries and diagrams show it
            (r"#.*?$", Comment.Single),
        ],
        "expr": [
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(NAMESPACE, suffix=r"\b"), Keyword.Namespace),
            (words(WORD_OPERATORS, suffix=r"\b"), Operator.Word),
            (words(STATEMENTS + CONTROL, suffix=r"\b"), Keyword),
            (words(tuple(CONSTANTS), suffix=r"\b"), Keyword.Constant),
            (words(tuple(DTYPES), suffix=r"(?=\[)"), Keyword.Type),  # float[B, 3]
            (words(MODULES, suffix=r"\b(?!\{)"), Name.Builtin),
            (words(FUNCTIONS, suffix=r"\b(?!\{)"), Name.Builtin),
            (r"_\b", Name.Builtin.Pseudo),  # the flow
            (words(tuple(RUNTIME), suffix=r"\b(?!\{)"), Name.Builtin.Pseudo),  # `training`
            (r"[A-Z]\w*(?:\{[^{}\n]*\}\w*)*(?=\()", Name.Class),  # a block used as a step
            (_NAME, Name),
            (r'"[^"\n]*"', String.Double),
            (r"'[^'\n]*'", String.Single),
            (r"(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"\.\.\.", Punctuation),
            (r"\*\*|//|==|!=|<=|>=|[-+*/%@<>=]", Operator),
            (r"[()\[\],;:.]", Punctuation),
        ],
    }


# ---- the TextMate grammar (VS Code and every TextMate-compatible editor) ----
def _alternatives(names) -> str:
    return "|".join(sorted(names, key=lambda n: (-len(n), n)))


def textmate_grammar() -> dict:
    """The TextMate grammar of `.nn` specs, built from the same tables as `NetspecLexer`;
    `python -m netspec.dsl.highlight` writes editors/vscode/syntaxes/netspec.tmLanguage.json."""
    def match(regex, scope=None, **captures):
        rule = {"match": regex}
        if scope:
            rule["name"] = f"{scope}.netspec"
        if captures:
            rule["captures"] = {k.lstrip("_"): {"name": f"{v}.netspec"} for k, v in captures.items()}
        return rule

    label = _LABEL
    expr = [
        {"include": "#comments"},
        match(rf"\b({'|'.join(CONTROL)})\b", "keyword.control"),
        match(rf"\b({'|'.join(NAMESPACE)})\b", "keyword.control.import"),
        match(rf"\b({'|'.join(WORD_OPERATORS)})\b", "keyword.operator.logical"),
        match(rf"\b({'|'.join(STATEMENTS)})\b", "keyword.other"),
        match(rf"\b({'|'.join(DECLARATIONS)})\b", "storage.type"),
        match(rf"\b({_alternatives(CONSTANTS)})\b", "constant.language"),
        match(rf"\b({_alternatives(DTYPES)})(?=\[)", "storage.type.dtype"),
        match(rf"\b({_alternatives(MODULES)})\b(?!\{{)", "support.class.layer"),
        match(rf"\b({_alternatives(FUNCTIONS)})\b(?!\{{)", "support.function.op"),
        match(r"\b_\b", "variable.language.flow"),
        match(rf"\b({_alternatives(RUNTIME)})\b(?!\{{)", "variable.language.runtime"),
        match(r"\b[A-Z]\w*(?:\{[^{}]*\}\w*)*(?=\()", "entity.name.type.block"),
        match(_NAME, "variable.other"),
        match(r'"[^"]*"', "string.quoted.double"),
        match(r"'[^']*'", "string.quoted.single"),
        match(r"(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+", "constant.numeric.float"),
        match(r"\d+", "constant.numeric.integer"),
        match(r"\.\.\.", "constant.language.ellipsis"),
        match(r"\*\*|//|==|!=|<=|>=|[-+*/%@<>]", "keyword.operator"),
        match(r"=", "keyword.operator.assignment"),
        match(r"[()\[\]]", "punctuation.bracket"),
        match(r"[,;:.]", "punctuation.separator"),
        match(r"\\$", "punctuation.separator.continuation"),
    ]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "netspec",
        "scopeName": "source.netspec",
        "fileTypes": ["nn"],
        "comment": "Generated by `python -m netspec.dsl.highlight` from netspec's registry and grammar; "
                   "do not edit by hand.",
        "patterns": [
            {"include": "#comments"},
            match(rf"(?:\b(default)\s+)?\b(block|model)\s+({_NAME})", _1="storage.modifier",
                  _2="storage.type", _3="entity.name.type.class"),
            match(rf"^\s*({label})\s*(:)", _1="entity.name.tag.label", _2="punctuation.separator"),
            match(rf"(;)\s*({label})\s*(:)", _1="punctuation.separator", _2="entity.name.tag.label",
                  _3="punctuation.separator"),
            {"begin": rf"\b(head)\s+({_NAME})", "end": "$",
             "beginCaptures": {"1": {"name": "keyword.other.netspec"}, "2": {"name": "variable.other.head.netspec"}},
             "patterns": [match(rf"(:)\s*({'|'.join(TASKS)})\b", _1="punctuation.separator",
                                _2="support.function.task"), {"include": "#expr"}]},
            match(rf"\b(input|output)\s+({_NAME})", _1="keyword.other", _2="variable.other.declaration"),
            {"include": "#expr"},
        ],
        "repository": {
            "comments": {"patterns": [match(r"##.*$", "comment.line.double-number-sign.documentation"),
                                      match(r"#.*$", "comment.line.number-sign")]},
            "expr": {"patterns": expr},
        },
    }


if __name__ == "__main__":
    import json
    import sys

    sys.stdout.write(json.dumps(textmate_grammar(), indent=2) + "\n")
