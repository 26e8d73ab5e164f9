"""`netspec serve FILE`: the diagram of a spec in a browser, redrawn each time the file is saved.

    netspec serve stdlib/unet.nn --port 8008        # then open http://127.0.0.1:8008/

One `LiveDiagram` watches the spec and every file it imports (polling mtimes, 5 times a
second) and re-analyzes on a change; a spec that no longer compiles leaves the last good
diagram in place and shows the errors, each with its line and caret. The page
(`netspec/web/`) polls `/api/state` and fetches `/api/svg` when the version moves or a
click collapses or expands a block; SVGs are cached per (version, collapsed, expanded).

Only the standard library's http.server. Binds 127.0.0.1 unless --host says otherwise;
on a loopback address requests naming another Host are refused (DNS rebinding). Every
piece of spec text reaches the page as escaped SVG text or as JSON put in with
textContent, and a Content-Security-Policy allows no script but /app.js.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

POLL_S = 0.2  # how often the watcher looks at the files' mtimes
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_PATH = re.compile(r"^[A-Za-z0-9_.]{1,200}$")  # a block or group path from a click
ASSETS = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass
class Settings:
    """What `netspec serve` was asked for (the spec, its model and the diagram options)."""
    file: str  # a path or a standard-library name
    model: str | None = None
    overrides: dict = field(default_factory=dict)  # --set
    input_shapes: dict = field(default_factory=dict)  # --input
    extra_paths: tuple = ()  # --path
    depth: int | None = None  # collapse blocks nested this deep at first
    rankdir: str = "BT"
    shapes: bool = True  # shapes on the edges (tooltips always have them)
    params: bool = False  # counts on the layers (tooltips always have them)


class LiveDiagram:
    """The spec's latest good analysis, its current errors, and the SVGs drawn from it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.version = 0  # moves on each analysis, good or bad
        self.analysis = None  # the last good one
        self.error: str | None = None
        self.watched: dict[Path, float | None] = {}
        self._svgs: dict[tuple, str] = {}
        from .dsl.library import resolve
        self.path = resolve(settings.file)[0]  # raises NetspecError (did you mean ...) for a bad name

    def _stamps(self, paths) -> dict[Path, float | None]:
        out = {}
        for p in paths:
            try:
                st = p.stat()
                out[p] = (st.st_mtime_ns, st.st_size)
            except OSError:
                out[p] = None
        return out

    def changed(self) -> bool:
        return bool(self.watched) and self._stamps(self.watched) != self.watched

    def refresh(self) -> None:
        """Analyze the spec again; on errors keep the last good diagram and record them."""
        from .compiler.builder import analyze
        from .dsl.errors import NetspecError

        s = self.settings
        files = set(self.watched) | {self.path}
        stamps = self._stamps(files)  # before reading: a save during the analysis is seen next time
        try:
            a = analyze(s.file, s.model, dict(s.overrides), input_shapes=dict(s.input_shapes) or None,
                        extra_paths=s.extra_paths)
            error = None
            files = {Path(f) for f in a.checked.program.namespaces if not f.startswith("<")} | files
            stamps = {**self._stamps(files), **stamps}
        except NetspecError as e:
            a, error = None, _format(e.diagnostics)
        except Exception as e:  # a bug of ours: shown on the page, the server goes on
            a, error = None, f"internal error: {type(e).__name__}: {e}"
        with self.lock:
            self.watched = stamps
            self.version += 1
            self.error = error
            if a is not None:
                self.analysis = a
                self._svgs.clear()

    def state(self) -> dict:
        with self.lock:
            a = self.analysis
            return {"version": self.version, "error": self.error, "file": str(self.settings.file),
                    "model": a.info.name if a else None, "params": a.num_params if a else None,
                    "depth": self.settings.depth}

    def svg(self, collapsed: frozenset, expanded: frozenset) -> tuple[int, str | None]:
        from .compiler.diagram import diagram_data
        from .dsl.render import to_svg

        with self.lock:
            version, a = self.version, self.analysis
            key = (id(a), collapsed, expanded)
            if a is None or key in self._svgs:
                return version, self._svgs.get(key)
        s = self.settings
        svg = to_svg(a.graph, depth=s.depth, rankdir=s.rankdir, collapsed=collapsed, expanded=expanded,
                     **diagram_data(a, shapes=s.shapes, params=s.params))
        with self.lock:
            if self.analysis is a:
                if len(self._svgs) > 64:  # many collapse states of one version: keep the cache small
                    self._svgs.clear()
                self._svgs[key] = svg
        return version, svg

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_S):
            if self.changed():
                self.refresh()


def _format(diagnostics) -> str:
    from .dsl.errors import print_diagnostics
    buf = io.StringIO()
    print_diagnostics(diagnostics, buf)
    return buf.getvalue()


def _paths(query: dict, name: str) -> frozenset[str]:
    values = [v for item in query.get(name, []) for v in item.split(",") if v]
    return frozenset(v for v in values if _PATH.match(v))


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the terminal shows the spec's errors, not each poll
        pass

    def _host_ok(self) -> bool:
        """On loopback, only pages of this machine's own names may talk to us."""
        if not self.server.loopback:
            return True
        host = self.headers.get("Host", "")
        name = host[:host.find("]") + 1] if host.startswith("[") else host.split(":")[0]
        return name in LOOPBACK

    def _send(self, status: int, body: bytes, ctype: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200):
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if not self._host_ok():
            return self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8")
        url = urlsplit(self.path)
        live = self.server.live
        if url.path in ASSETS:
            name, ctype = ASSETS[url.path]
            return self._send(200, (resources.files("netspec") / "web" / name).read_bytes(), ctype)
        if url.path == "/api/state":
            return self._json(live.state())
        if url.path == "/api/svg":
            q = parse_qs(url.query)
            try:
                version, svg = live.svg(_paths(q, "collapsed"), _paths(q, "expanded"))
            except Exception as e:  # Graphviz failed: say so on the page
                return self._json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)
            return self._json({"version": version, "svg": svg})
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    live: LiveDiagram
    loopback: bool


class Server:
    """The HTTP server and the file watcher, started and stopped together (tests use it too)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 8008):
        self.live = LiveDiagram(settings)
        self.live.refresh()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.live = self.live
        self.httpd.loopback = host in LOOPBACK
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def start(self) -> "Server":
        for target in (self.httpd.serve_forever, lambda: self.live.watch(self._stop)):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)


def cmd_serve(args) -> int:
    from .dsl.params import parse_input_shapes, parse_overrides

    if args.file in ("-", "<stdin>"):
        print("error: netspec serve watches a file; standard input cannot be watched", file=sys.stderr)
        return 1

    settings = Settings(args.file, args.model, parse_overrides(args.overrides), parse_input_shapes(args.inputs),
                        tuple(args.path), args.depth, args.rankdir, not args.no_shapes, args.params)
    try:
        server = Server(settings, args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    if server.live.error:
        print(server.live.error, file=sys.stderr, end="")
    print(f"netspec: serving {args.file} at {server.url} (Ctrl-C to stop)", flush=True)
    server.start()
    if args.open:
        import webbrowser
        webbrowser.open(server.url)
    shown = server.live.version
    try:
        while True:  # the terminal echoes what the page shows
            time.sleep(POLL_S)
            state = server.live.state()
            if state["version"] != shown:
                shown = state["version"]
                print(state["error"] or f"{time.strftime('%H:%M:%S')} redrawn {state['model']}",
                      file=sys.stderr if state["error"] else sys.stdout, end="" if state["error"] else "\n",
                      flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def configure(name: str, p: argparse.ArgumentParser) -> None:
    """`netspec serve`'s arguments (called by netspec.cli)."""
    from .compiler.cli import render_options, spec_options

    spec_options(p)
    render_options(p, dpi=False)
    p.add_argument("--port", type=int, default=8008, help="TCP port (0: any free one; default 8008)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=cmd_serve)
