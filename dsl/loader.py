"""Finding and loading spec files: imports, the search path, and each file's namespace.

`load(path_or_text)` parses the main file and, transitively, every file it imports,
and returns a `Program`. A name in a file's namespace is either a `DefEntry` (a block
or model defined in, or imported into, that file) or a `ModuleNamespace` (`import x`).
Search path for `import name` / `import pkg.name`: the importing file's folder, then
`extra_paths`, then $NETSPEC_PATH, then the stdlib (`import resnet`; `import
stdlib.resnet` names the stdlib's explicitly).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import ast as A
from .errors import Diagnostic, Diagnostics, NetspecError, Span, TooManyErrors, did_you_mean
from .library import SUFFIX, resolve_source, stdlib_dir
from .parser import parse, parse_file


@dataclass(frozen=True)
class DefEntry:
    defn: A.Def
    module: "A.Module"


@dataclass
class ModuleNamespace:
    module: A.Module
    names: dict = field(default_factory=dict)


@dataclass
class Program:
    main: A.Module
    namespaces: dict[str, ModuleNamespace]  # file -> namespace

    def namespace(self, module: A.Module) -> ModuleNamespace:
        return self.namespaces[module.file]

    def lookup(self, module: A.Module, dotted: str) -> DefEntry | ModuleNamespace | None:
        """What `dotted` (`Block`, `resnet.Bottleneck`) names in `module`, else None."""
        parts = dotted.split(".")
        cur = self.namespace(module).names.get(parts[0])
        for p in parts[1:]:
            cur = cur.names.get(p) if isinstance(cur, ModuleNamespace) else None
        return cur

    def models(self) -> list[A.Def]:
        return [d for d in self.main.defs if d.kind == "model"]


def search_path(importer: str, extra_paths=()) -> list[Path]:
    paths = []
    if importer and not importer.startswith("<"):
        paths.append(Path(importer).resolve().parent)
    else:
        paths.append(Path.cwd())
    paths += [Path(p) for p in extra_paths]
    paths += [Path(p) for p in os.environ.get("NETSPEC_PATH", "").split(os.pathsep) if p]
    paths.append(stdlib_dir())
    return paths


def _resolve(imp: A.Import, importer: str, extra_paths) -> Path | None:
    """The spec file an import names (a regular `.nn` file), or None when there is none."""
    if imp.is_path:
        p = Path(imp.module)
        if p.suffix != SUFFIX:  # never /proc/self/environ, /etc/passwd, a device
            return None
        base = Path(importer).resolve().parent if not importer.startswith("<") else Path.cwd()
        cand = p if p.is_absolute() else base / p
        return cand if cand.is_file() else None
    parts = imp.module.split(".")
    if parts[0] == "stdlib" and len(parts) == 2:
        target = stdlib_dir() / f"{parts[1]}.nn"
        return target if target.is_file() else None
    rel = Path(*parts).with_suffix(".nn")
    for root in search_path(importer, extra_paths):
        if (root / rel).is_file():
            return root / rel
    return None


def load(source: str | os.PathLike, *, extra_paths=(), file: str | None = None,
         diags: Diagnostics | None = None) -> Program:
    """Load a spec given as a path, a stdlib name or text. Raises NetspecError with every
    problem, or, given `diags`, adds import problems there and returns what could be
    loaded (so the caller can report them together with later errors)."""
    collect = diags is not None
    diags = diags if collect else Diagnostics()
    source, _ = resolve_source(source)
    if isinstance(source, os.PathLike):
        main = parse_file(source)
    else:
        main = parse(str(source), file or "<string>")
    namespaces: dict[str, ModuleNamespace] = {}
    loading: list[str] = []

    def load_module(module: A.Module) -> ModuleNamespace:
        ns = ModuleNamespace(module)
        namespaces[module.file] = ns
        loading.append(module.file)
        for d in module.defs:
            if d.name in ns.names:
                first = ns.names[d.name].defn.span
                diags.error(f"duplicate definition '{d.name}' (first defined at {first})", d.span)
            ns.names[d.name] = DefEntry(d, module)
        for imp in module.imports:
            target = _resolve(imp, module.file, extra_paths)
            what = f'"{imp.module}"' if imp.is_path else imp.module
            if target is None and imp.is_path and Path(imp.module).suffix != SUFFIX:
                diags.error(f"cannot import {what}: an import names a {SUFFIX} spec file", imp.span)
                continue
            if target is None:
                roots = ", ".join(str(p) for p in search_path(module.file, extra_paths)[:3])
                diags.error(f"cannot find spec {what} to import (searched {roots}, ...)", imp.span)
                continue
            key = str(target)
            if key in loading:
                diags.error(f"import cycle: {' -> '.join(loading[loading.index(key):] + [key])}", imp.span)
                continue
            if key in namespaces:
                sub = namespaces[key]
            else:
                try:
                    parsed = parse_file(key)
                except NetspecError as e:
                    diags.error(_not_a_spec(what, key, e), imp.span)
                    continue
                sub = load_module(parsed)
            if imp.names is None:
                alias = imp.alias or (Path(imp.module).stem if imp.is_path else imp.module.split(".")[-1])
                ns.names[alias] = sub
            else:
                for name, span in imp.names:
                    entry = sub.names.get(name)
                    if not isinstance(entry, DefEntry):
                        hint = did_you_mean(name, [n for n, v in sub.names.items() if isinstance(v, DefEntry)])
                        diags.error(f"'{imp.module}' defines no block or model '{name}'{hint}", span)
                    else:
                        ns.names[name] = entry
        loading.pop()
        return ns

    try:
        load_module(main)
    except TooManyErrors:
        if not collect:
            raise
    if not collect:
        diags.raise_if_errors()
    return Program(main, namespaces)


def _not_a_spec(what: str, path: str, err: NetspecError) -> str:
    """One line for an imported file that does not parse. Its own messages are left out:
    they would quote the file, and an import may name any file the user can read."""
    errors = err.errors
    first = next((d.span for d in errors if d.span is not None), None)
    where = f", the first at {first}" if first is not None else ""
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    return f"cannot import {what}: not a netspec spec file ({count}{where}; `netspec check {path}` shows them)"


def select_model(program: Program, name: str | None) -> A.Def:
    """The model to build: `name`, the file's `default model`, or its only model."""
    models = program.models()
    names = ", ".join(d.name for d in models) or "none"
    if name is not None:
        for d in models:
            if d.name == name:
                return d
        raise NetspecError([Diagnostic("error", f"no model '{name}' in {program.main.file}"
                                       f"{did_you_mean(name, [d.name for d in models])}; models: {names}")])
    if not models:
        # at the last definition (blocks only: a library), else at the top of the file
        where = program.main.defs[-1].span if program.main.defs else Span(program.main.file, 1, 1)
        raise NetspecError([Diagnostic("error", f"{program.main.file} defines no model "
                                       "(write `model Name(...):` or import one)", where)])
    defaults = [d for d in models if d.default]
    if len(defaults) > 1:
        raise NetspecError([Diagnostic("error", f"more than one default model: {defaults[1].name}",
                                       defaults[1].span)])
    if defaults:
        return defaults[0]
    if len(models) == 1:
        return models[0]
    raise NetspecError([Diagnostic("error", f"{program.main.file} defines several models ({names}): "
                                   "choose one with --model NAME, or mark one `default model`", models[1].span)])
