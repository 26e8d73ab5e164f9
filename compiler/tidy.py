"""The forward torch.fx generates, rewritten as people write it (for `netspec compile`).

fx's code is correct but reads like a machine's: `;  x = None` after every line (it drops
dead values early), `getattr(self.layer1, "0")(x)` for a numbered child, the private
homes of public functions (`torch.functional.split`, `torch._C._nn.scaled_dot_product_attention`)
and `dim = 1`; and it calls the members of an nn.ModuleList one after another,
`h_0 = self.h[0](x)`, `h_1 = self.h[1](h_0)`..., where people write a loop. The rewrite works on the syntax tree (`ast`), so it can change spelling but
never meaning, and everything it writes back is data the tree already held.
"""
from __future__ import annotations

import ast
import keyword

# fx writes some torch functions by where they live: write their public name
PUBLIC_NAMES = {
    "torch.functional.split": "torch.split",
    "torch.functional.einsum": "torch.einsum",
    "torch._C._nn.scaled_dot_product_attention": "F.scaled_dot_product_attention",
    "torch._C._nn.linear": "F.linear",
    "torch._C._nn.pad": "F.pad",
    "torch.nn.functional": "F",
}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _path(node: ast.AST) -> str | None:
    """`self.features[1].conv` -> "self.features.1.conv" (module paths as the spec writes them)."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
        base = _path(node.value)
        return None if base is None else f"{base}.{node.slice.value}"
    if isinstance(node, ast.Attribute):
        base = _path(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else None


def _from_dotted(name: str) -> ast.expr:
    head, *rest = name.split(".")
    node: ast.expr = ast.Name(head, ast.Load())
    for part in rest:
        node = ast.Attribute(node, part, ast.Load())
    return node


class _Readable(ast.NodeTransformer):
    def __init__(self, lists: frozenset):
        self.lists = lists  # paths of the nn.ModuleLists ("self.transformer.h"): indexed with [i]

    def visit_Assign(self, node: ast.Assign):
        # `a = b = None`: fx freeing values it no longer needs; Python does that on return
        if isinstance(node.value, ast.Constant) and node.value.value is None and \
                all(isinstance(t, ast.Name) for t in node.targets):
            return None
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        # getattr(h, "0") -> h[0] for a ModuleList (a group with named members keeps getattr);
        # getattr(m, "fc") -> m.fc
        if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) == 2
                and not node.keywords and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            key = node.args[1].value
            if key.isascii() and key.isdigit() and _path(node.args[0]) in self.lists:
                return ast.Subscript(node.args[0], ast.Constant(int(key)), ast.Load())
            if key.isascii() and key.isidentifier() and not keyword.iskeyword(key):
                return ast.Attribute(node.args[0], key, ast.Load())
        return node

    def visit_Attribute(self, node: ast.Attribute):
        name = _dotted(node)
        if name is not None:
            for private, public in PUBLIC_NAMES.items():
                if name == private or name.startswith(private + "."):
                    return _from_dotted(public + name[len(private):])
        return self.generic_visit(node)


def _unpack(body: list) -> list:
    """`s = torch.split(...)` then `q = s[0]`, `k = s[1]`, `v = s[2]` and nothing else reading
    `s`: `q, k, v = torch.split(...)`."""
    loads: dict[str, int] = {}
    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                loads[n.id] = loads.get(n.id, 0) + 1
    out, i = [], 0
    while i < len(body):
        stmt = body[i]
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, names, j = stmt.targets[0].id, [], i + 1
            while j < len(body):
                nxt = body[j]
                if not (isinstance(nxt, ast.Assign) and len(nxt.targets) == 1 and isinstance(nxt.targets[0], ast.Name)
                        and isinstance(nxt.value, ast.Subscript) and isinstance(nxt.value.value, ast.Name)
                        and nxt.value.value.id == name and isinstance(nxt.value.slice, ast.Constant)
                        and nxt.value.slice.value == len(names)):
                    break
                names.append(nxt.targets[0].id)
                j += 1
            if len(names) >= 2 and loads.get(name, 0) == len(names) and name not in names:
                target = ast.Tuple([ast.Name(n, ast.Store()) for n in names], ast.Store())
                out.append(ast.Assign([target], stmt.value))
                i = j
                continue
        out.append(stmt)
        i += 1
    return out


def _chain_link(stmt, lists: dict):
    """(list path, index, result name, argument name) of `t = self.h[i](a)`, else None."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    call = stmt.value
    if not (isinstance(call, ast.Call) and len(call.args) == 1 and not call.keywords
            and isinstance(call.args[0], ast.Name) and isinstance(call.func, ast.Subscript)
            and isinstance(call.func.slice, ast.Constant) and type(call.func.slice.value) is int):
        return None
    path = _path(call.func.value)
    if path not in lists:
        return None
    return path, call.func.slice.value, stmt.targets[0].id, call.args[0].id


def _roll(body: list, lists: dict) -> list:
    """Every member of a ModuleList called in turn, each result used only by the next call:
    `x = a` then `for layer in self.h: x = layer(x)`. Anything else stays as it is."""
    loads: dict[str, int] = {}
    names: set[str] = set()
    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name):
                names.add(n.id)
                if isinstance(n.ctx, ast.Load):
                    loads[n.id] = loads.get(n.id, 0) + 1
    out, i = [], 0
    while i < len(body):
        link = _chain_link(body[i], lists)
        if link is None or link[1] != 0:
            out.append(body[i])
            i += 1
            continue
        path, _, _, first_arg = link
        chain = [link]
        while len(chain) < lists[path] and i + len(chain) < len(body):
            nxt = _chain_link(body[i + len(chain)], lists)
            prev = chain[-1]
            if nxt is None or nxt[0] != path or nxt[1] != len(chain) or nxt[3] != prev[2] or loads.get(prev[2]) != 1:
                break
            chain.append(nxt)
        if len(chain) != lists[path]:
            out.append(body[i])
            i += 1
            continue
        last = chain[-1][2]
        base = _base_name(last, names)
        var = _fresh("layer", names)
        names |= {base, var}
        out.append(ast.Assign([ast.Name(base, ast.Store())], ast.Name(first_arg, ast.Load())))
        # the list as the code reaches it (`self.features[1]`, not a dotted path)
        out.append(ast.For(ast.Name(var, ast.Store()), body[i].value.func.value,
                           [ast.Assign([ast.Name(base, ast.Store())],
                                       ast.Call(ast.Name(var, ast.Load()), [ast.Name(base, ast.Load())], []))], []))
        rest = [_Rename(last, base).visit(s) for s in body[i + len(chain):]]
        return out + _roll(rest, lists)
    return out


def _base_name(last: str, names: set) -> str:
    """`transformer_h_11` -> `transformer_h` (the list's name), unless taken."""
    stem = last.rsplit("_", 1)[0] if last.rsplit("_", 1)[-1].isdigit() else last
    return _fresh(stem, names - {last})


def _fresh(name: str, names: set) -> str:
    while name in names or keyword.iskeyword(name):
        name += "_"
    return name


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name):
        if node.id == self.old:
            node.id = self.new
        return node


def readable(src: str, lists=None) -> str:
    """fx's `def forward(...)` source, tidied; the same function. `lists`: the paths of the
    nn.ModuleLists it reaches, as `self.a.b`, and their lengths."""
    lists = dict(lists or {})
    tree = ast.parse(src)
    tree = _Readable(frozenset(lists)).visit(tree)
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        fn.body = _roll(_unpack(fn.body), lists)
    tree = ast.fix_missing_locations(tree)
    return ast.unparse(tree)
