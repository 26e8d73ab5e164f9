"""NETSPEC_DEBUG=N: print each stage's intermediate form to stderr while a spec compiles.

1: the graph IR of every distinct block; 2: also the torch.fx code (printed by the
compiler); 3: also the AST. Like tinygrad's DEBUG=2, it answers "what did netspec make of
my spec?" without a debugger.
"""
from __future__ import annotations

import os
import pprint
import sys

from .ir import BlockGraph


def level() -> int:
    try:
        return int(os.environ.get("NETSPEC_DEBUG", "0") or 0)
    except ValueError:
        return 1


def dump_ir(block: BlockGraph, stream=None) -> None:
    stream = stream or sys.stderr
    seen = set()
    for path, b in block.walk():
        if id(b) in seen:
            continue
        seen.add(id(b))
        print(f"# graph IR of {b.kind} {b.key}  (first at '{path.rstrip('.') or '<top>'}', {b.span})", file=stream)
        for op in b.ops():
            ins = ", ".join(repr(a) for a in op.args) if op.args else ""
            where = f" -> {op.path}" if op.path else ""
            print(f"  %{op.id} = {op.kind} {op.label or op.target}({ins}){where}    @{op.span.line}:{op.span.col}",
                  file=stream)
        for o in b.outputs:
            print(f"  {'head' if o.is_head else 'output'} {o.name} = {o.ref!r}" + (f" : {o.task}" if o.task else ""),
                  file=stream)


def dump_ast(module, stream=None) -> None:
    print(f"# AST of {module.file}", file=stream or sys.stderr)
    pprint.pprint(module.defs, stream=stream or sys.stderr, width=120, compact=True)
