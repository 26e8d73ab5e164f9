"""`netspec lsp`: a language server for editors (VS Code, Neovim, any LSP client).

It answers with netspec's own stages: diagnostics are `netspec check`'s (snapshot.py),
hover shows inferred shapes, parameter counts and doc comments, go-to-definition follows
blocks across imports into the stdlib, completion offers the registry's layers and their
keywords, and formatting is `netspec fmt` (features.py); server.py speaks the protocol
through pygls, the optional extra `pip install 'netspec-nn[lsp]'`.
"""
from __future__ import annotations

import argparse

INSTALL = "pip install 'netspec-nn[lsp]'"
# import name -> distribution: what `netspec lsp` needs beyond netspec's own dependencies
EXTRAS = {"pygls": "pygls", "lsprotocol": "pygls", "cattrs": "pygls"}


def missing_message(root: str) -> str:
    """The one line shown when import name `root` (a key of EXTRAS) is missing."""
    return f"the language server needs {EXTRAS[root]}, which the lsp extra brings: {INSTALL}"


def cmd_lsp(args) -> int:
    from .server import serve  # imports pygls: a missing one is reported by netspec.cli with its install line

    serve()
    return 0


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """Add the `lsp` command's arguments (called by netspec.cli)."""
    p.add_argument("--stdio", action="store_true",
                   help="talk over standard input/output (the default and only transport; accepted because "
                        "editors pass it)")
    p.set_defaults(func=cmd_lsp)
