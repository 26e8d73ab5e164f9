"""`netspec lsp`, driven over stdio as an editor drives it: initialize, didOpen, diagnostics
(check's, with their ranges), didChange, hover (shape, parameters, doc), definition (across
imports and into the stdlib), completion (registry layers and keywords), formatting."""
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pygls  # noqa: F401 - the dev extra brings the lsp extra: without it these tests fail, never skip
import pytest

from netspec.dsl.format import format_text

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60

LIB = """\
## Two linear layers with a ReLU between.
block TwoLayer(d, hidden):
    fc1: Linear(d, hidden)
    ReLU()
    fc2: Linear(hidden, d)
"""

MAIN = """\
import lib
from resnet import BasicBlock

model Net(d=4):
    input x: float[B=2, d]
    input unused: float[B=2, d]
    ## the first projection
    proj: Linear(d, 8)
    Lienar(8, 8)
    body: lib.TwoLayer(8, 16)
    head y
"""


class Client:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's stdin/stdout."""

    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "netspec", "lsp"], cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        self.next_id = 0
        self.version = 1  # of main.nn in the editor
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line or length is None:
                return
            self.messages.put(json.loads(out.read(length)))

    def send(self, message: dict):
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict):
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict):
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = self.messages.get(timeout=TIMEOUT_S)
            if msg.get("id") == self.next_id and "method" not in msg:
                assert "error" not in msg, msg["error"]
                return msg["result"]
            self.notifications.append(msg)

    def diagnostics(self, uri: str, version: int) -> list[dict]:
        """The diagnostics published for that version of `uri` (earlier ones are skipped)."""
        while True:
            for i, msg in enumerate(self.notifications):
                params = msg.get("params") or {}
                if msg.get("method") == "textDocument/publishDiagnostics" and params["uri"] == uri \
                        and params.get("version") == version:
                    del self.notifications[: i + 1]
                    return params["diagnostics"]
            self.notifications.append(self.messages.get(timeout=TIMEOUT_S))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module (it imports torch once); each test edits main.nn its own way."""
    tmp_path = tmp_path_factory.mktemp("lsp")
    (tmp_path / "lib.nn").write_text(LIB)
    main = tmp_path / "main.nn"
    main.write_text(MAIN)
    client = Client(tmp_path)
    try:
        caps = client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
        client.notify("initialized", {})
        client.notify("textDocument/didOpen", {"textDocument": {"uri": main.as_uri(), "languageId": "netspec",
                                                                "version": 1, "text": MAIN}})
        client.diagnostics(main.as_uri(), 1)
        yield client, caps["capabilities"], main
        client.request("shutdown", None)
        client.notify("exit", None)
        assert client.proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
        client.proc.wait()


@pytest.fixture
def session(server):
    """(client, capabilities, uri, path, edit): edit(text) replaces main.nn's text in the editor."""
    client, caps, main = server
    uri = main.as_uri()

    def edit(text: str) -> str:
        client.version += 1
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": client.version},
                                                 "contentChanges": [{"text": text}]})
        return text

    return client, caps, uri, main, edit


def _at(text: str, needle: str, offset: int = 0) -> dict:
    """The LSP position of `needle` (plus offset characters) in text."""
    for n, line in enumerate(text.split("\n")):
        if needle in line:
            return {"line": n, "character": line.index(needle) + offset}
    raise AssertionError(needle)


def _check_output(path: Path) -> list[tuple[int, int, str, str]]:
    """(line, col, severity, message) of what `netspec check` prints."""
    run = subprocess.run([sys.executable, "-m", "netspec", "check", str(path)], capture_output=True, text=True,
                         cwd=path.parent)
    out = []
    for line in run.stderr.splitlines():
        if line.startswith(str(path) + ":"):
            _, ln, col, rest = line.split(":", 3)
            severity, message = rest.strip().split(": ", 1)
            out.append((int(ln), int(col), severity, message))
    return out


def test_capabilities(session):
    _, caps, _, _, _ = session
    assert caps["hoverProvider"] and caps["definitionProvider"] and caps["documentFormattingProvider"]
    assert "(" in caps["completionProvider"]["triggerCharacters"]


def test_diagnostics_are_checks_with_ranges_and_follow_edits(session):
    client, _, uri, main, edit = session
    edit(MAIN + "# edited\n")
    diags = client.diagnostics(uri, client.version)
    severity = {1: "error", 2: "warning"}
    got = sorted((d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1, severity[d["severity"]],
                  d["message"]) for d in diags)
    assert got == sorted(_check_output(main))
    assert ("error", "unknown layer 'Lienar' (did you mean 'Linear'?)") in {(g[2], g[3]) for g in got}
    unknown = next(d for d in diags if "Lienar" in d["message"])
    assert unknown["range"] == {"start": {"line": 8, "character": 4}, "end": {"line": 8, "character": 10}}
    assert all(d["source"] == "netspec" for d in diags)

    edit(MAIN.replace("Lienar", "Linear").replace("    input unused: float[B=2, d]\n", ""))
    assert client.diagnostics(uri, client.version) == []


def test_lint_diagnostics_carry_their_code(session):
    client, _, uri, _, edit = session
    edit(MAIN.replace("Lienar", "Linear").replace("    input unused: float[B=2, d]\n", "")
         .replace("    head y\n", "    drop: Dropout(0.5)\n    head y\n"))
    (lint,) = client.diagnostics(uri, client.version)
    assert (lint["code"], lint["severity"], lint["source"]) == ("NS103", 2, "netspec")
    assert lint["message"] == "head 'y' is the output of drop: no dropout right before an output"
    assert lint["range"]["start"] == {"line": 9, "character": 4}


def test_hover_shows_shape_parameters_and_doc(session):
    client, _, uri, _, edit = session
    fixed = edit(MAIN.replace("Lienar", "Linear"))
    result = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": _at(fixed, "proj:")})
    text = result["contents"]["value"]
    assert "**proj**: `Linear(4, 8)` → `float32[2, 8]`" in text
    assert "40 parameters" in text  # 4 * 8 + 8
    assert "the first projection" in text
    on_layer = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                     "position": _at(fixed, "Linear(d, 8)", 2)})
    assert "Linear(in_features: dim, out_features: dim, bias: bool = true)" in on_layer["contents"]["value"]
    on_block = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                     "position": _at(fixed, "TwoLayer(8", 1)})
    value = on_block["contents"]["value"]
    assert "block TwoLayer(d, hidden)" in value and "Two linear layers with a ReLU between." in value
    assert "**body**: `TwoLayer(8, 16)` → `float32[2, 8]`" in value and "280 parameters" in value  # 8*16+16 + 16*8+8


def test_definition_follows_imports_and_reaches_the_stdlib(session):
    client, _, uri, main, edit = session
    edit(MAIN)
    tmp_path = main.parent
    loc = client.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                     "position": _at(MAIN, "TwoLayer(8", 3)})
    assert loc == [{"uri": (tmp_path / "lib.nn").as_uri(),
                    "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 14}}}]
    loc = client.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                     "position": _at(MAIN, "BasicBlock", 2)})
    resnet = ROOT / "stdlib" / "resnet.nn"
    line = next(n for n, ln in enumerate(resnet.read_text().split("\n")) if ln.startswith("block BasicBlock("))
    assert loc[0]["uri"] == resnet.as_uri() and loc[0]["range"]["start"] == {"line": line, "character": 0}
    loc = client.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": _at(MAIN, "lib.", 1)})
    assert loc[0]["uri"] == (tmp_path / "lib.nn").as_uri()


def test_completion_offers_layers_and_their_keywords(session):
    client, _, uri, _, edit = session
    typing = edit(MAIN.replace("    head y\n", "    Conv2d(4, 4, 3, bias=false, \n    head y\n"))
    pos = _at(typing, "bias=false, ", len("bias=false, "))
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})["items"]
    labels = [i["label"] for i in items]
    assert labels[:3] == ["in_channels", "out_channels", "kernel_size"]
    assert "padding" in labels and "init" in labels and "bias" not in labels  # bias is given already
    assert next(i for i in items if i["label"] == "padding")["insertText"] == "padding="
    typing = edit(MAIN.replace("    head y\n", "    Co\n    head y\n"))
    pos = _at(typing, "    Co", 6)
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})["items"]
    labels = {i["label"]: i for i in items}
    assert "Conv2d" in labels and "softmax" in labels and "BasicBlock" in labels and "lib" in labels
    assert labels["Conv2d"]["detail"].startswith("Conv2d(in_channels: dim, out_channels: dim, kernel_size: dims")
    typing = edit(MAIN.replace("lib.TwoLayer(8, 16)", "lib.TwoLayer(8, 16, "))
    pos = _at(typing, "lib.TwoLayer(8, 16, ", len("lib.TwoLayer(8, 16, "))
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})["items"]
    assert [i["label"] for i in items] == ["d", "hidden", "frozen"]  # a block's parameters, then frozen=
    assert items[-1]["insertText"] == "frozen="


def test_formatting_is_fmt(session):
    client, _, uri, _, edit = session
    messy = edit(MAIN.replace("proj: Linear(d, 8)", "proj:Linear( d,8 )"))
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                       "options": {"tabSize": 4, "insertSpaces": True}})
    assert len(edits) == 1 and edits[0]["newText"] == format_text(messy)
    assert edits[0]["range"]["start"] == {"line": 0, "character": 0}
    assert "    proj: Linear(d, 8)\n" in edits[0]["newText"]


def test_a_missing_pygls_names_the_install_command():
    code = ("import sys; sys.modules['pygls'] = None\n"
            "from netspec.cli import main\nsys.exit(main(['lsp']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip() == ("error: the language server needs pygls, which the lsp extra brings: "
                                  "pip install 'netspec-nn[lsp]'")
