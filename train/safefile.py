"""How a run folder's files are written: whole or not at all, and never through a link.

A run folder may come from someone else (a colleague's run, a download), so a name in
it can be a planted symbolic link: `RUN/metrics.csv -> ~/.bashrc`. Nothing here opens
an existing name for writing, and run files are read only when they are regular files
(`read_bytes`), never through a link. A file is written to a fresh temporary name in its own
folder (created exclusively, so no link can be there), flushed to disk, and renamed over
the old name -- the rename replaces a link itself, never what it points to. A reader
therefore sees the old file or the new one, never half of one, after any crash.
Folders inside a run are used only when they are real folders (`real_dir`).

    write_text(run / "config.yaml", text)
    write_with(run / "curves.png", lambda tmp: fig.savefig(tmp))
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where links need privileges to plant


class LinkError(OSError):
    """A name inside a run folder is a symbolic link where a file or folder of the run belongs."""


def _check_not_link(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise LinkError(0, "is a symbolic link; a run's files are never written through links", str(path))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def real_dir(root: Path, rel: str | Path = "", create: bool = True) -> Path:
    """`root/rel` as a folder of the run: every component below `root` must be a real folder,
    not a link (created when missing and `create`). Raises LinkError or another OSError."""
    path = Path(root)
    for part in Path(rel).parts:
        path = path / part
        _check_not_link(path)
        if create:
            path.mkdir(exist_ok=True)
    return path


def write_with(path: Path, write: Callable[[str], None], *, before_rename: Callable[[], None] | None = None,
               sync: bool = True) -> None:
    """Write `path` through `write(tmp)`, which fills the temporary file it is given; then
    fsync and rename it into place. before_rename: called with the temporary file complete
    (the test hook of the save sequence). On any failure the temporary file is removed
    and the old `path` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if sync:
            fsync_file(tmp)
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes, **kw) -> None:
    """Replace `path` with `data` (see write_with)."""
    def put(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
    write_with(path, put, **kw)


def write_text(path: Path, text: str, **kw) -> None:
    write_bytes(path, text.encode("utf-8"), **kw)


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """A run file's bytes: a regular file, not a link (a planted `model.json -> /dev/zero` must
    not hang a reader), at most `limit` bytes. Raises LinkError or another OSError."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == errno.ELOOP or (not NOFOLLOW and os.path.islink(path)):
            raise LinkError(0, "is a symbolic link; a run's files are never read through links", str(path)) from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "is not a regular file", str(path))
        if limit is not None and st.st_size > limit:
            raise OSError(0, f"is {st.st_size:,} bytes, more than the {limit:,} such a file may hold", str(path))
        return f.read()


def open_append(path: Path):
    """`path` (an existing regular file of the run) opened to append text; refuses a link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "is not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "a", newline="", encoding="utf-8")


def remove(path: Path) -> None:
    """Delete a file, a folder tree or a link (the link only, never what it points to)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # rmtree unlinks links inside, it does not follow them
    else:
        os.unlink(path)


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
