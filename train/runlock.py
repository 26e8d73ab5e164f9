"""One writer per run folder: the lock a training run holds on its folder while it writes it.

Two runs writing one folder would leave the config of one and the weights of the other.
A run takes an exclusive `flock` on `RUN/.lock` (holding its PID, for the message) before
it writes anything and keeps it until it ends; a second run on the folder stops at once
with "run folder D is in use by PID N". The operating system drops the lock when the
process dies, however it dies, so a killed run never leaves a stale lock behind. Where
`fcntl` is missing (Windows) no lock is taken.
"""
from __future__ import annotations

import os
from pathlib import Path

from .runfolder import RunError
from .safefile import NOFOLLOW

try:
    import fcntl
except ImportError:  # Windows: no advisory locks of this kind
    fcntl = None

LOCK = ".lock"


class RunLock:
    """`with RunLock(folder):` holds the folder's lock; raises RunError when another process has it."""

    def __init__(self, folder: Path):
        self.folder, self.fd = Path(folder), None

    def __enter__(self) -> "RunLock":
        path = self.folder / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            raise RunError(f"cannot lock run folder '{self.folder}': '{path}': {e.strerror or e}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise RunError(f"run folder '{self.folder}' is in use by PID {holder}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def remove_if_empty(folder: Path) -> None:
    """Remove a run folder that holds nothing but its lock (a run that failed before writing)."""
    try:
        if {p.name for p in folder.iterdir()} <= {LOCK}:
            (folder / LOCK).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass
