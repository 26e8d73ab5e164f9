"""The wheel, built from this tree and installed into its own venv as a user installs it.

`wheel()` builds `netspec_nn-*.whl` with pip; `installed_venv()` installs it with the
extras a user may ask for (EXTRAS) into `.venv-wheel` (CPU torch pinned first, from the machine's local
wheel). The venv is created once and kept while pyproject.toml is unchanged (its
dependencies are then the same); the wheel itself is reinstalled on every run, so
each test session exercises the current code. CI starts from a clean clone, so
there the venv is always fresh.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-wheel"
TORCH = os.environ.get("TORCH", "torch==2.13.0+cpu")  # as the Makefile pins it
EXTRAS = "train,lsp,export,tensorboard"  # every user-facing extra: the docs show all of their commands
PIP = ["--no-input", "--progress-bar", "off", "--disable-pip-version-check", "-q"]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def wheel(out: Path) -> Path:
    """Build the wheel of this tree into `out` and return its path."""
    _run([sys.executable, "-m", "pip", "wheel", *PIP, "--no-deps", "--no-build-isolation", "-w", out, ROOT],
         cwd=out)
    (whl,) = out.glob("netspec_nn-*.whl")
    return whl


def installed_venv(whl: Path) -> Path:
    """A venv holding `whl` with its extras and nothing of the source tree: its bin/ folder."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (TORCH + EXTRAS).encode()).hexdigest()[:16]
    stamp = VENV / f".deps-{key}"
    py = VENV / "bin" / "python"
    if not stamp.exists():
        shutil.rmtree(VENV, ignore_errors=True)
        _run([sys.executable, "-m", "venv", VENV])
        _run([py, "-m", "pip", "install", *PIP, TORCH])
        _run([py, "-m", "pip", "install", *PIP, f"{whl}[{EXTRAS}]"])
        stamp.touch()
    else:
        _run([py, "-m", "pip", "install", *PIP, "--no-deps", "--force-reinstall", whl])
    return VENV / "bin"


def env_for(bin_dir: Path) -> dict:
    """The environment of a user who activated the venv: its bin/ first, nothing of this tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NETSPEC_PATH")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "100"
    return env
