"""The standard library of specs, and what a spec name on the command line means.

The stdlib ships inside the package (`netspec.stdlib`) and is found with
`importlib.resources`, wherever netspec is installed. A spec is named by a path,
or by a stdlib name: a file's stem (`gpt2`, `resnet`, `stdlib/gpt2.nn`) or a model
of it (`ResNet50`). A file in the current folder wins over a stdlib name.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from .errors import NetspecError, did_you_mean
from .parser import parse_file

SUFFIX = ".nn"


@cache
def stdlib_dir() -> Path:
    """The folder of the installed stdlib specs (a real folder: netspec installs unzipped)."""
    root = resources.files("netspec.stdlib")
    if not isinstance(root, Path):  # a zipped install: the specs need paths for messages and imports
        raise NetspecError("netspec's standard library is not on the file system (zipped install?); "
                           "install netspec-nn unzipped")
    return root


def stdlib_files() -> dict[str, Path]:
    """Stem -> path of every stdlib spec, sorted by stem."""
    return {p.stem: p for p in sorted(stdlib_dir().glob(f"*{SUFFIX}"))}


@dataclass(frozen=True)
class StdlibModel:
    name: str  # model name in its file ("ResNet50")
    file: Path
    default: bool  # the file's `default model`
    doc: str | None  # the model's doc comment


@cache
def stdlib_models() -> tuple[StdlibModel, ...]:
    """Every model the stdlib defines, file by file in the order written."""
    out = []
    for path in stdlib_files().values():
        module = parse_file(path)
        out += [StdlibModel(d.name, path, d.default, d.doc) for d in module.defs if d.kind == "model"]
    return tuple(out)


def reference(path: Path) -> str | None:
    """The paper a stdlib file follows: the parenthesis of its first doc-comment sentence."""
    doc = parse_file(path).doc or ""
    m = re.search(r"\(([^()]*\d{4}[^()]*)\)", " ".join(doc.split()))
    return m.group(1) if m else None


def resolve_source(source) -> tuple[object, str | None]:
    """(source, model or None) for `load`: spec text stays text; a path or a name (any
    one-line string) is resolved to its file, and a model name to its file and model."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str) and "\n" not in source:
        return resolve(source)
    return source, None


def resolve(name: str, *, cwd: Path | None = None) -> tuple[Path, str | None]:
    """What a spec name means: (file, model or None). Raises NetspecError with a
    did-you-mean when it is neither a file nor a stdlib name."""
    cwd = cwd or Path.cwd()
    path = Path(name).expanduser()
    if (path if path.is_absolute() else cwd / path).is_dir():
        raise NetspecError(f"'{name}' is a folder; name a spec file in it")
    for candidate in (path, path.with_name(path.name + SUFFIX)) if path.suffix != SUFFIX and path.name else (path,):
        full = candidate if candidate.is_absolute() else cwd / candidate
        if full.is_file():
            return candidate, None
    stem = name[len("stdlib/"):] if name.startswith("stdlib/") else name
    stem = stem[: -len(SUFFIX)] if stem.endswith(SUFFIX) else stem
    files = stdlib_files()
    if stem in files:
        return files[stem], None
    if "/" not in stem and "\\" not in stem:
        matches = [m for m in stdlib_models() if m.name.lower() == stem.lower()]
        exact = [m for m in matches if m.name == stem]
        matches = exact or matches
        if len(matches) == 1:
            return matches[0].file, matches[0].name
        if len(matches) > 1:
            where = ", ".join(f"{m.name} in {m.file.name}" for m in matches)
            raise NetspecError(f"'{name}' names several stdlib models ({where}); give the file and --model")
    known = list(files) + [m.name for m in stdlib_models()]
    if path.suffix == SUFFIX or "/" in name or "\\" in name:
        raise NetspecError(f"no such spec file '{name}'{did_you_mean(stem, known)}")
    raise NetspecError(f"'{name}' is neither a spec file nor a standard-library model{did_you_mean(stem, known)}; "
                       "`netspec models` lists them")
