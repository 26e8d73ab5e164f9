"""`netspec compile`: eject a model as standalone PyTorch code that imports only torch.

One nn.Module class per distinct block (GPT-2's 12 blocks share one class); its
__init__ builds the layers under the spec's names, its forward is the code torch.fx
generates from the lowered graph. netspec's own ops are copied in as source. The
file keeps no link to netspec: a user can leave the DSL at any time.
"""
from __future__ import annotations

import inspect
import keyword
import math
import re
import textwrap

import torch

from ..dsl.debug import level
from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph, InitSpec, Op
from ..dsl.registry import REGISTRY
from ..dsl.tables import init_call

from . import ops as netspec_ops
from .builder import analyze, optimizer
from .instances import GraphCache, instantiate
from .metashapes import no_init
from .passes import print_rewrites
from .pysource import attribute, comment, docstring, identifier, literal
from .tidy import readable

_HEADER = '''{docstring}
import math

import torch
from torch import nn
from torch.nn import functional as F

inf = float("inf")
nan = float("nan")


def _generated_for(name, given, made, command):
    """This file holds the layers of one setting of the spec's parameters (`made`); another
    setting may change layer sizes, repeat counts and branches, so it is another file.
    `command`: (what generated it, the parameters it was given with --set)."""
    changed = {{k: v for k, v in given.items() if v != made[k]}}
    if changed:
        sets = " ".join(f"{{k}}={{_setting(v)}}" for k, v in given.items() if v != made[k] or k in command[1])
        raise ValueError(f"{{name}} was generated for {{made}}; for {{changed}} generate it again: "
                         f"{{command[0]}} --set {{sets}}")


def _setting(v):
    """A value as `--set k=v` reads it."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_setting(x) for x in v) + "]"
    return str(v)


def _container(**children):
    """An nn.Module holding named children (the spec's named groups)."""
    m = nn.Module()
    for name, child in children.items():
        if isinstance(child, nn.Parameter):
            m.register_parameter(name, child)
        else:
            m.add_module(name, child)
    return m
'''


def _py(v) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    return repr(v)


def _ctor(op: Op) -> str:
    args = [_py(a) for a in op.ctor_args] + [f"{k}={_py(v)}" for k, v in op.ctor_kwargs.items()]
    if op.target == "Parameter":
        return f"nn.Parameter(torch.empty({', '.join(args)}))"
    target = REGISTRY[op.target].target
    name = target.split(":", 1)[1] if target.startswith("netspec:") else target.replace("torch.nn.", "nn.")
    return f"{name}({', '.join(args)})"


def _access(root: str, path: str) -> str:
    return attribute(root, path)


def _init_line(target: str, spec: InitSpec) -> str | None:
    call = init_call(spec)
    if call is None:
        return None
    fn, args, kwargs = call
    params = [target] + [_py(v) for v in args] + [f"{k}={_py(v)}" for k, v in kwargs.items()]
    return f"nn.init.{fn}({', '.join(params)})"


class _Ejector:
    def __init__(self, cache: GraphCache, command: str = "netspec compile", overridden=()):
        self.command = command  # what generates this file (named in the error for other settings)
        self.overridden = tuple(overridden)  # the parameters it was generated with --set
        self.names: dict[int, str] = {}
        self.classes: list[str] = []
        self.used_names: set[str] = set()
        self.cache = cache  # the (optimized) fx graph of every block, by id(BlockGraph)
        self.globals: dict = {}

    def class_for(self, block: BlockGraph, top_name: str | None = None) -> str:
        if id(block) in self.names:
            return self.names[id(block)]
        for op in block.ops():  # children first: classes are defined before use
            if op.kind == "block":
                self.class_for(op.block)
        base = identifier(top_name or block.name)
        name, n = base, 2
        while name in self.used_names:
            name = f"{base}_{n}"
            n += 1
        self.used_names.add(name)
        self.names[id(block)] = name
        self.classes.append(self.class_source(block, name, top=top_name is not None))
        return name

    def init_header(self, block: BlockGraph, name: str) -> list[str]:
        """The model's parameters as __init__ arguments, their defaults the values this file was
        generated for; other values are refused with the command that generates them (see
        docs/TOOLING.md: the layers are written out for one setting)."""
        if not block.params:
            return ["    def __init__(self):", "        super().__init__()"]
        taken = {"self", "super", "nn", "torch", "F", "math", "inf", "nan", "_container", "_generated_for",
                 "_setting"} | self.used_names | {o.__name__ for o in netspec_ops.EJECTED_SOURCES}
        args = {}
        for k in block.params:  # a parameter named like something __init__ uses gets a '_'
            arg = identifier(k)
            while arg in taken or arg in args.values():
                arg += "_"
            args[k] = arg
        made = "{" + ", ".join(f"{literal(k)}: {_py(v)}" for k, v in block.params.items()) + "}"
        given = "{" + ", ".join(f"{literal(k)}: {args[k]}" for k in block.params) + "}"
        command = f"({literal(self.command)}, {_py(tuple(self.overridden))})"
        return [f"    def __init__(self, {', '.join(f'{args[k]}={_py(v)}' for k, v in block.params.items())}):",
                "        super().__init__()",
                f"        _generated_for({literal(name)},",
                f"                       {given},",
                f"                       {made},",
                f"                       {command})"]

    def class_source(self, block: BlockGraph, name: str, top: bool) -> str:
        # children register in build's order (compiler.instances.instantiate): each layer where it
        # is made, its groups on first use, then the groups no layer reached; so keys come out alike
        tree: dict = {}
        for op in block.ops():
            if op.kind == "module":
                _insert(tree, op.path, _ctor(op))
            elif op.kind == "block":
                _insert(tree, op.path, f"{self.names[id(op.block)]}()")
        for path in block.containers:
            _insert(tree, path, None)
        lines = [f"class {name}(nn.Module):"]
        params = ", ".join(f"{k}={v!r}" for k, v in block.params.items())
        doc = f"{block.kind} {block.name}({params}), from {block.span}"
        if block.doc:
            doc = block.doc.strip() + "\n\n" + doc
        lines.append(docstring(doc, "    ") + "\n")
        lines += self.init_header(block, name) if top else ["    def __init__(self):", "        super().__init__()"]
        for key, sub in tree.items():
            lines.append(f"        self.{key} = {_expr(sub, 2)}" if attribute("", key) == f".{key}" else
                         f"        self.add_module({literal(key)}, {_expr(sub, 2)})")
        for op in block.ops():
            if op.kind == "block" and op.frozen:
                lines.append(f"        {_access('self', op.path)}.requires_grad_(False)  # frozen block")
            if op.kind != "module":
                continue
            acc = _access("self", op.path)
            for pname, spec in op.init.items():
                line = _init_line(acc if op.target == "Parameter" else f"{acc}.{pname}", spec)
                if line:
                    lines.append(f"        {line}")
            if op.tie is not None:
                lines.append(f"        {acc}.weight = {_access('self', op.tie[0])}.weight  # tied: one Parameter")
            if op.frozen:
                lines.append(f"        {acc}.requires_grad_(False)")
        code = self.cache.graphs[id(block)].python_code(root_module="self")
        for k, v in code.globals.items():
            self.globals.setdefault(k, v)
        fwd = readable(textwrap.dedent(code.src).strip("\n"), _lists(tree, "self"))
        lines.append("")
        lines.append(textwrap.indent(fwd, "    "))
        return "\n".join(lines) + "\n"


def _insert(tree: dict, path: str, leaf):
    parts = path.split(".")
    cur = tree
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    if leaf is None:
        cur.setdefault(parts[-1], {})
    else:
        cur[parts[-1]] = leaf


def _is_list(sub) -> bool:
    """A group whose members are all numbered 0..n-1, in order: an nn.ModuleList."""
    return isinstance(sub, dict) and bool(sub) and list(sub) == [str(i) for i in range(len(sub))]


def _lists(tree: dict, root: str) -> set[str]:
    """The paths (`self.transformer.h`) of the groups `_expr` writes as nn.ModuleLists."""
    out = set()
    for key, sub in tree.items():
        if isinstance(sub, dict):
            out |= {f"{root}.{key}"} if _is_list(sub) else set()
            out |= _lists(sub, f"{root}.{key}")
    return out


def _expr(sub, level: int) -> str:
    if isinstance(sub, str):
        return sub
    pad = "    " * (level + 1)
    keys = list(sub)
    if _is_list(sub):
        inner = ",\n".join(pad + _expr(sub[k], level + 1) for k in keys)
        return f"nn.ModuleList([\n{inner},\n{'    ' * level}])"
    inner = ",\n".join(f"{pad}{k}={_expr(v, level + 1)}" if attribute("", k) == f".{k}" else
                        f"{pad}**{{{literal(k)}: {_expr(v, level + 1)}}}" for k, v in sub.items())
    return f"_container(\n{inner},\n{'    ' * level})" if keys else "_container()"


def eject(source, model: str | None = None, overrides: dict | None = None, *, extra_paths=(),
          class_name: str | None = None, optimize: bool = True) -> str:
    """Standalone PyTorch source defining the model as an nn.Module class: the graph `build`
    returns (optimized by compiler.passes), or with optimize=False the spec as written."""
    if class_name is not None and (not class_name.isidentifier() or keyword.iskeyword(class_name)):
        raise NetspecError([Diagnostic("error", f"--class-name must be a Python identifier, got {class_name!r}")])
    a = analyze(source, model, overrides, extra_paths=extra_paths)  # fails with spec errors, never later
    g = a.graph
    cache = GraphCache(optimizer(optimize), meta=True, share=True)
    with torch.device("meta"), no_init():  # the passes read layer settings (a Dropout's p), not weights
        model = instantiate(g, cache)
    if optimize and level() >= 1:
        print_rewrites(model)
    command = f"netspec compile {a.info.source} --model {g.name}"
    ej = _Ejector(cache, command, (overrides or {}).keys())
    top = ej.class_for(g, class_name or g.name)
    used = set(ej.globals.values())
    def calls(obj, code: str) -> bool:  # called from a forward, or built in an __init__
        return re.search(rf"(?<![\w.]){obj.__name__}\(", code) is not None

    wanted = [obj for obj in netspec_ops.EJECTED_SOURCES if obj in used or any(calls(obj, c) for c in ej.classes)]
    for obj in wanted:  # and what they call (StochasticDepth calls stochastic_depth)
        wanted += [o for o in netspec_ops.EJECTED_SOURCES if o not in wanted and calls(o, inspect.getsource(obj))]
    helpers = [inspect.getsource(obj) for obj in netspec_ops.EJECTED_SOURCES if obj in wanted]
    # fx names a non-torch function by its module path (compiler_ops_center_crop): alias it
    helpers += [f"{name} = {obj.__name__}\n" for name, obj in sorted(ej.globals.items(), key=lambda kv: kv[0])
                if obj in netspec_ops.EJECTED_SOURCES and name != obj.__name__]
    doc = (g.doc or a.checked.program.main.doc or f"The {g.name} network.").strip()
    about = (f"{doc}\n\nGenerated by `netspec compile` from {a.info.source} (model {g.name}"
             + (", as written" if not optimize else "") + ").\n"
             f"Plain PyTorch: this file imports only torch. Parameters: {a.num_params:,}.\n")
    out = _HEADER.format(docstring=docstring(about))
    for h in helpers:
        out += "\n\n" + h
    for c in ej.classes:
        out += "\n\n" + c
    inputs = ", ".join(f"{i.name}: {i.dtype}{list(i.shape)}" for i in a.info.inputs)
    out += f"\n\n# Example: model = {top}(); inputs {comment(inputs)}\n"
    return out
