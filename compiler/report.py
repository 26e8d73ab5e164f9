"""What `netspec check` reports: a line per model and the diagnostics as it goes, or one
JSON object at the end (`--json`)."""
from __future__ import annotations

import json
import sys

from ..dsl.errors import Diagnostic, print_diagnostics

EXIT_OK, EXIT_ERROR = 0, 1


class CheckReport:
    """What `check` says: lines and diagnostics as it goes, or one JSON object at the end
    (`--json`): {"ok", "models": [...], "diagnostics": [{file, line, col, end, severity, code,
    message, notes}]}. Lints named by --no-lint are left out."""

    def __init__(self, as_json: bool, silenced: set[str]):
        self.json, self.silenced = as_json, silenced
        self.models: list[dict] = []
        self.diagnostics: list = []
        self.ok = True

    def _diags(self, diags) -> None:
        diags = [d for d in diags if d.code not in self.silenced]
        self.diagnostics += diags
        if not self.json:
            print_diagnostics(diags, sys.stderr)

    def model(self, warnings, summary: dict, line: str) -> None:
        self._diags(warnings)
        self.models.append(summary)
        self.line(line)

    def line(self, text: str) -> None:
        if not self.json:
            print(text)

    def errors(self, diags) -> None:
        self.ok = False
        self._diags(diags)

    def failed(self, diags, message: str | None = None) -> int:
        self.errors(diags)
        if message and not self.json:
            print(message, file=sys.stderr)
        elif message:
            self.diagnostics.append(Diagnostic("error", message.removeprefix("error: ")))
        return self.finish()

    def finish(self) -> int:
        if self.json:
            print(json.dumps({"ok": self.ok, "models": self.models,
                              "diagnostics": [d.as_json() for d in self.diagnostics]}, indent=2))
        return EXIT_OK if self.ok else EXIT_ERROR
