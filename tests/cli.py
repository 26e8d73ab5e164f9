"""Running the `netspec` command in-process, as the CLI tests do."""
from __future__ import annotations

from netspec.cli import main


def run(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `netspec ARGV...`; arguments may be paths or numbers."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err
