"""`netspec compile`: eject a model as standalone PyTorch code that imports only torch.

One nn.Module class per distinct block (GPT-2's 12 blocks share one class); its
__init__ takes the block's parameters and builds the layers under the spec's names, its
forward is the code torch.fx generates from the lowered graph. netspec's own ops are copied
in as source. The file keeps no link to netspec: a user can leave the DSL at any time.

Layer sizes are written as the spec computes them (`nn.Linear(n_embd, 3 * n_embd)`): the
spec is elaborated with symbolic parameters (dsl/symbolic.py). A parameter that decides
the layers' structure (a repeat count, a branch, a flag that adds a bias) stays *fixed*:
the layers are written out for its value, and __init__ refuses another one. Which
parameters are free is proved, not guessed: the file is generated again with them changed
(`_free_params`), and a parameter is free only if its code came out the same.
"""
from __future__ import annotations

import inspect
import keyword
import math
import re
import textwrap

import torch

from ..dsl import symbolic
from ..dsl.debug import level
from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.ir import BlockGraph, InitSpec, Op
from ..dsl.registry import REGISTRY
from ..dsl.tables import MODULE_ATTRIBUTES, init_call

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


def _generated_for(name, given, made, fixed, command=None):
    """The `fixed` parameters decide which layers there are (a repeat count, a branch, a flag
    that adds a bias): the layers below are written out for their values in `made`, another
    value is another file. `command`: (what generated it, the parameters it was given with
    --set); None for a block, which its model builds."""
    changed = {{k: given[k] for k in fixed if given[k] != made[k]}}
    if not changed:
        return
    generated = {{k: made[k] for k in fixed}}
    if command is None:
        raise ValueError(f"{{name}} was generated for {{generated}}; {{changed}} would change its layers: "
                         "compile the spec again with the model parameters that give them")
    sets = " ".join(f"{{k}}={{_setting(v)}}" for k, v in given.items() if v != made[k] or k in command[1])
    raise ValueError(f"{{name}} was generated for {{generated}}; for {{changed}} generate it again: "
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


# names __init__ reads besides its arguments: the module's globals and the builtins that
# expressions (symbolic.FUNCTIONS) and loops (`for _ in range(n)`) write
_TAKEN = frozenset({"self", "super", "nn", "torch", "F", "math", "inf", "nan", "_container", "_generated_for",
                    "_setting", "_", "range"}) | frozenset(f.split(".")[0] for f in symbolic.FUNCTIONS.values())


def _plain(v):
    """A value as the numbers it stands for (defaults and docstrings show values)."""
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return symbolic.plain(v)


class _Ejector:
    def __init__(self, cache: GraphCache, command: str = "netspec compile", overridden=(), free=None):
        self.command = command  # what generates this file (named in the error for other settings)
        self.overridden = tuple(overridden)  # the parameters it was generated with --set
        # id(block) -> its parameters proven free (_free_params); None: a skeleton, the values
        # masked and no guards, to compare with the skeleton of another setting
        self.free = free
        self.names: dict[int, str] = {}
        self.args: dict[int, dict[str, str]] = {}  # id(block) -> parameter -> its __init__ argument
        self.classes: list[str] = []
        self.blocks: list[BlockGraph] = []  # the block of each class, in the same order
        self.used_names: set[str] = set()
        self.cache = cache  # the (optimized) fx graph of every block, by id(BlockGraph)
        self.globals: dict = {}

    def value(self, v) -> str:
        return "..." if self.free is None else _py(_plain(v))

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
        taken = _TAKEN | self.used_names | {o.__name__ for o in netspec_ops.EJECTED_SOURCES}
        args: dict[str, str] = {}
        for k in block.params:  # a parameter named like something __init__ uses gets a '_'
            arg = identifier(k)
            while arg in taken or arg in args.values():
                arg += "_"
            args[k] = arg
        self.args[id(block)] = args
        self.classes.append(self.class_source(block, name, top=top_name is not None))
        self.blocks.append(block)
        return name

    def init_header(self, block: BlockGraph, name: str, top: bool) -> list[str]:
        """The block's parameters as __init__ arguments (the model's with the values this file
        was generated for as defaults), and the guard of those that are fixed (see
        `_generated_for`)."""
        if not block.params:
            return ["    def __init__(self):", "        super().__init__()"]
        args = self.args[id(block)]
        sig = ", ".join(f"{args[k]}={self.value(v)}" if top else args[k] for k, v in block.params.items())
        lines = [f"    def __init__(self, {sig}):", "        super().__init__()"]
        if self.free is None:
            return lines
        fixed = [k for k in block.params if k not in self.free.get(id(block), ())]
        if fixed:
            shown = list(block.params) if top else fixed  # the model's command --sets every changed one
            made = "{" + ", ".join(f"{literal(k)}: {self.value(block.params[k])}" for k in shown) + "}"
            given = "{" + ", ".join(f"{literal(k)}: {args[k]}" for k in shown) + "}"
            tail = f",\n{' ' * 23}({literal(self.command)}, {_py(tuple(self.overridden))})" if top else ""
            lines += [f"        _generated_for({literal(name)},", f"{' ' * 23}{given},",
                      f"{' ' * 23}{made},", f"{' ' * 23}{_py(tuple(fixed))}{tail})"]
        return lines

    def instance(self, op: Op) -> str:
        """`Block(n_embd=n_embd, bias=True)`: a block instance, its arguments as this block computes them."""
        child = self.args[id(op.block)]
        given = op.block_args or op.block.params
        return f"{self.names[id(op.block)]}({', '.join(f'{child[k]}={_py(v)}' for k, v in given.items())})"

    def class_source(self, block: BlockGraph, name: str, top: bool) -> str:
        # children register in build's order (compiler.instances.instantiate): each layer where it
        # is made, its groups on first use, then the groups no layer reached; so keys come out alike
        args = self.args[id(block)]
        tree: dict = {}
        setup: list[str] = []
        with symbolic.spelling({(id(block), k): a for k, a in args.items()}):  # __init__ reads its arguments
            for op in block.ops():
                if op.kind == "module":
                    _insert(tree, op.path, _ctor(op))
                elif op.kind == "block":
                    _insert(tree, op.path, self.instance(op))
            for path in block.containers:
                _insert(tree, path, None)
            built = [f"        self.{key} = {_expr(sub, 2, key, block.repeats)}" if attribute("", key) == f".{key}"
                     else f"        self.add_module({literal(key)}, {_expr(sub, 2, key, block.repeats)})"
                     for key, sub in tree.items()]
            for op in block.ops():
                if op.kind == "block" and op.frozen:
                    setup.append(f"        {_access('self', op.path)}.requires_grad_(False)  # frozen block")
                if op.kind != "module":
                    continue
                acc = _access("self", op.path)
                for pname, spec in op.init.items():
                    line = _init_line(acc if op.target == "Parameter" else f"{acc}.{pname}", spec)
                    if line:
                        setup.append(f"        {line}")
                if op.tie is not None:
                    setup.append(f"        {acc}.weight = {_access('self', op.tie[0])}.weight  # tied: one Parameter")
                if op.frozen:
                    setup.append(f"        {acc}.requires_grad_(False)")
        # forward reads the parameters it needs from attributes named like them
        taken = set(tree) | MODULE_ATTRIBUTES | {"forward"}
        attrs: dict[str, str] = {}
        for k in block.params:
            attr = identifier(k)
            while attr in taken or attr in attrs.values():
                attr += "_"
            attrs[k] = attr
        with symbolic.spelling({(id(block), k): f"self.{a}" for k, a in attrs.items()}) as spelled:
            code = self.cache.graphs[id(block)].python_code(root_module="self")
        kept = [f"        self.{attrs[k]} = {args[k]}" for k in block.params if (id(block), k) in spelled["used"]]
        for k, v in code.globals.items():
            self.globals.setdefault(k, v)
        fwd = readable(textwrap.dedent(code.src).strip("\n"), _lists(tree, "self"))

        lines = [f"class {name}(nn.Module):"]
        params = ", ".join(f"{k}={self.value(v)}" for k, v in block.params.items())
        doc = f"{block.kind} {block.name}({params}), from {block.span}"
        if block.doc:
            doc = block.doc.strip() + "\n\n" + doc
        lines.append(docstring(doc, "    ") + "\n")
        lines += self.init_header(block, name, top)
        lines += kept + built + setup
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


def _lists(tree: dict, root: str) -> dict[str, int]:
    """The paths (`self.transformer.h`) of the groups `_expr` writes as nn.ModuleLists, and
    their lengths."""
    out = {}
    for key, sub in tree.items():
        if isinstance(sub, dict):
            out |= {f"{root}.{key}": len(sub)} if _is_list(sub) else {}
            out |= _lists(sub, f"{root}.{key}")
    return out


def _expr(sub, level: int, path: str = "", repeats=None) -> str:
    """A group as the expression that builds it; `repeats` (BlockGraph.repeats) the groups a
    `repeat` numbered, written as a loop when their members are built alike."""
    if isinstance(sub, str):
        return sub
    pad = "    " * (level + 1)
    keys = list(sub)
    if _is_list(sub):
        count = (repeats or {}).get(path)
        texts = [sub[k] for k in keys]
        if count is not None and symbolic.plain(count) == len(keys) and \
                all(isinstance(t, str) for t in texts) and len(set(texts)) == 1:
            return f"nn.ModuleList([{sub[keys[0]]} for _ in range({_py(count)})])"
        inner = ",\n".join(pad + _expr(sub[k], level + 1, f"{path}.{k}", repeats) for k in keys)
        return f"nn.ModuleList([\n{inner},\n{'    ' * level}])"
    inner = ",\n".join(f"{pad}{k}={_expr(v, level + 1, f'{path}.{k}', repeats)}" if attribute("", k) == f".{k}"
                        else f"{pad}**{{{literal(k)}: {_expr(v, level + 1, f'{path}.{k}', repeats)}}}"
                        for k, v in sub.items())
    return f"_container(\n{inner},\n{'    ' * level})" if keys else "_container()"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _moves(v) -> list:
    """Other values of a numeric parameter to generate the file again with, the first that
    the spec accepts taken (a head count must still divide the width...)."""
    if isinstance(v, int):
        return [v * 2, v + 1, v * 3] if v > 0 else [v - 1, v * 2] if v < 0 else [1, 2]
    return [v * 2, v / 2, v + 0.25] if v else [0.5, 0.25]


def _lowered(source, model, overrides, extra_paths, optimize):
    """The spec elaborated with symbolic parameters and lowered to fx (on the meta device):
    (Analysis, GraphCache, module, Trace)."""
    with symbolic.tracing() as trace:
        a = analyze(source, model, overrides, extra_paths=extra_paths)  # fails with spec errors, never later
        cache = GraphCache(optimizer(optimize), meta=True, share=True)
        with torch.device("meta"), no_init():  # the passes read layer settings (a Dropout's p), not weights
            module = instantiate(a.graph, cache)
    return a, cache, module, trace


def _skeleton(a, cache, class_name) -> _Ejector:
    ej = _Ejector(cache)
    ej.class_for(a.graph, class_name or a.graph.name)
    return ej


def _free_params(source, model, overrides, extra_paths, optimize, class_name, a, cache, trace) -> dict:
    """id(block) -> the parameters of its class that ejected code may take any value of.

    The trace fixes every parameter that decided something; what it cannot see (a number
    read through C, a pass that only fires for some values) this catches: the file is
    generated again with the model's other numeric parameters changed, all at once and else
    one by one, and a parameter is free only if every class came out the same, its value
    having changed."""
    base = _skeleton(a, cache, class_name)
    text = "\n".join(base.classes)
    free: dict[int, set[str]] = {id(b): set() for b in base.blocks}
    g = a.graph
    numeric = [k for k, v in g.params.items() if _number(v) and (id(g), k) not in trace.fixed]

    def attempt(changes: dict) -> bool | None:  # None: the spec refuses these values
        try:
            a2, cache2, _, trace2 = _lowered(source, model, {**(overrides or {}), **changes}, extra_paths, optimize)
        except Exception:  # noqa: BLE001 -- a probe: whatever fails proves nothing, and the parameter stays fixed
            return None
        other = _skeleton(a2, cache2, class_name)
        if "\n".join(other.classes) != text:
            return False
        for b0, b1 in zip(base.blocks, other.blocks):
            for k, v in b0.params.items():
                if _number(v) and symbolic.plain(v) != symbolic.plain(b1.params.get(k)) and \
                        (id(b0), k) not in trace.fixed and (id(b1), k) not in trace2.fixed:
                    free[id(b0)].add(k)
        return True

    if len(numeric) > 1 and attempt({k: _moves(symbolic.plain(g.params[k]))[0] for k in numeric}):
        return free
    for k in numeric:
        for v in _moves(symbolic.plain(g.params[k])):
            if attempt({k: v}) is not None:
                break
    return free


def eject(source, model: str | None = None, overrides: dict | None = None, *, extra_paths=(),
          class_name: str | None = None, optimize: bool = True) -> str:
    """Standalone PyTorch source defining the model as an nn.Module class: the graph `build`
    returns (optimized by compiler.passes), or with optimize=False the spec as written."""
    if class_name is not None and (not class_name.isidentifier() or keyword.iskeyword(class_name)):
        raise NetspecError([Diagnostic("error", f"--class-name must be a Python identifier, got {class_name!r}")])
    a, cache, model_, trace = _lowered(source, model, overrides, extra_paths, optimize)
    g = a.graph
    if optimize and level() >= 1:
        print_rewrites(model_)
    free = _free_params(source, model, overrides, extra_paths, optimize, class_name, a, cache, trace)
    command = f"netspec compile {a.info.source} --model {g.name}"
    ej = _Ejector(cache, command, (overrides or {}).keys(), free)
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
