"""A run's own copy of its spec: the main file and every file it imports, laid out in the
run folder so the spec loads from there alone.

`eval`, `sample` and `--resume` rebuild the model from this copy, so a run keeps working
after its sources move or change and after netspec (and its stdlib) is upgraded:

    RUN/spec/     the user's files, in the folder layout they had (relative to the
                  deepest folder holding all of them): `import "../common/x.nn"` and
                  `import blocks` find the same files as they did
    RUN/stdlib/   the standard-library files the spec used

The copy is searched like the original: each file's own folder first, then the copies
of the search folders the imports were found in (`--path`, $NETSPEC_PATH), then
RUN/stdlib -- all before anything outside the run. Only imports that name a file by a
place the copy does not keep -- an absolute path, `stdlib.NAME` (always the installed
stdlib), a relative path between a user file and the stdlib -- are rewritten in the
copy, to the relative path of the file's copy.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..dsl.errors import NetspecError
from . import safefile

SPEC_DIR = "spec"
STDLIB_DIR = "stdlib"


class SpecCopyError(NetspecError):
    """The spec files of a run could not be read or written. The message is user-facing."""


@dataclass(frozen=True)
class SpecCopy:
    main: str  # the main file, relative to the run folder ("spec/net.nn")
    search_path: tuple[str, ...]  # import folders after each file's own, relative to the run folder
    files: tuple[str, ...] = ()  # every file of the copy, relative to the run folder, the main first

    def to_json(self) -> dict:
        return {"main": self.main, "search_path": list(self.search_path), "files": list(self.files)}

    @staticmethod
    def from_json(d) -> "SpecCopy":
        """From model.json's "spec"; raises ValueError when it is not one."""
        if not isinstance(d, dict) or not isinstance(d.get("main"), str):
            raise ValueError("no main file")
        copy = SpecCopy(d["main"], tuple(str(p) for p in d.get("search_path", ())),
                        tuple(str(p) for p in d.get("files", ())))
        for p in (copy.main, *copy.search_path, *copy.files):
            if Path(p).is_absolute() or ".." in Path(p).parts:  # a copy lies inside its run folder
                raise ValueError(f"'{p}' is outside the run folder")
        return copy


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _common_folder(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p) for p in paths]))


def plan(files: list[Path], roots: list[Path], stdlib: Path) -> tuple[dict[Path, str], tuple[str, ...]]:
    """Where each spec file goes in the run folder (as a relative POSIX path) and the
    search path of the copy. files: absolute, main first; roots: the import search
    folders after the importer's own, in order, the stdlib last."""
    user = [f for f in files if not _under(f, stdlib)]
    # search folders that held a file the spec used; the others hold nothing of the copy
    used = [r for r in roots if not _under(r, stdlib) and any(_under(f, r) for f in user)]
    base = _common_folder([f.parent for f in user] + used) if user else None
    where = {}
    for f in files:
        rel = (Path(SPEC_DIR) / f.relative_to(base)) if f in user else (Path(STDLIB_DIR) / f.relative_to(stdlib))
        where[f] = rel.as_posix()
    search = tuple((Path(SPEC_DIR) / r.relative_to(base)).as_posix() for r in used)
    if len(user) < len(files):
        search += (STDLIB_DIR,)
    return where, search


# `import REF` / `from REF import`: the keyword, the blanks after it (line continuations
# included), and the module reference: a quoted path or a dotted name.
_IMPORT = re.compile(r"""(import|from)((?:[\t \f]|\\[\t \f]*\r?\n)+)("[^"\n]*"|'[^'\n]*'|[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)""")


def _named_file(imp, importer: Path, stdlib: Path) -> Path | None:
    """The file an import names by place (a path, or stdlib.NAME), else None: `import name`
    is found by the search path, which the copy keeps."""
    if imp.is_path:
        p = Path(imp.module)
        return (p if p.is_absolute() else importer.parent / p).resolve()
    parts = imp.module.split(".")
    if parts[0] == "stdlib" and len(parts) == 2:
        return (stdlib / f"{parts[1]}.nn").resolve()
    return None


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(ln) + 1 for ln in lines[: line - 1]) + col - 1


def rewrite_imports(text: str, file: Path, own: str, where: dict[Path, str], stdlib: Path) -> str:
    """`text` of spec file `file` (copied to run-relative `own`) with every import that names a
    file by place pointed at that file's copy, where the relative path changed (absolute
    paths, stdlib.NAME, paths between user files and the stdlib)."""
    if "import" not in text:
        return text
    from ..dsl.parser import parse

    edits = []
    for imp in parse(text, str(file)).imports:
        target = _named_file(imp, file, stdlib)
        if target is None or target not in where:
            continue
        rel = os.path.relpath(where[target], os.path.dirname(own)).replace(os.sep, "/")
        if imp.is_path and Path(rel) == Path(imp.module):
            continue
        m = _IMPORT.match(text, _offset(text, imp.span.line, imp.span.col))
        if m is not None:
            edits.append((m.start(3), m.end(3), f'"{rel}"'))
    for a, b, new in sorted(edits, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def copy_spec(info, run_dir: Path, replacing: SpecCopy | None = None) -> SpecCopy | None:
    """Copy the files a model was built from into `run_dir` (see the module docstring).
    replacing: the copy of an earlier run in the folder, whose files are removed (a stale
    one could shadow an import of this spec). None when it was not built from files (spec
    text, a hand-made ModelInfo)."""
    from ..dsl.library import stdlib_dir

    files = [Path(f) for f in info.files]
    listed = bool(files)
    if not listed and info.source and not info.source.startswith("<") and Path(info.source).is_file():
        files = [Path(info.source).resolve()]  # a ModelInfo made by hand: its main file, verbatim
    if not files:
        return None
    stdlib = stdlib_dir().resolve()
    roots = [Path(r) for r in info.search_path]
    where, search = plan(files, roots, stdlib)
    texts = {}
    for f in files:  # all read before anything is written: the sources may be an earlier copy in run_dir
        try:
            texts[f] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SpecCopyError(f"cannot copy spec file '{f}' into the run: {getattr(e, 'strerror', None) or e}")
    if replacing is not None:
        remove_copy(run_dir, replacing)
    for f, text in texts.items():
        dest = run_dir / where[f]
        try:  # never through a link planted in the folder (safefile)
            folder = safefile.real_dir(run_dir, Path(where[f]).parent)
            safefile.write_text(folder / dest.name, rewrite_imports(text, f, where[f], where, stdlib) if listed
                                else text, sync=False)
        except OSError as e:
            raise SpecCopyError(f"cannot write '{dest}': {e.strerror or e}")
    return SpecCopy(where[files[0]], search, tuple(where[f] for f in files))


def remove_copy(run_dir: Path, copy: SpecCopy) -> None:
    """Delete the files of a copy in `run_dir`: only the .nn files it lists, inside the folder."""
    root = run_dir.resolve()
    for rel in copy.files:
        path = (run_dir / rel).resolve()
        if root in path.parents and path.suffix == ".nn" and path.is_file():
            try:
                path.unlink()
            except OSError as e:
                raise SpecCopyError(f"cannot remove '{path}' of the earlier run: {e.strerror or e}")


def spec_in(run_dir: Path, copy: SpecCopy) -> tuple[Path, list[Path]]:
    """(main file, extra import folders) to build a run's model from its copy."""
    return run_dir / copy.main, [run_dir / p for p in copy.search_path]
