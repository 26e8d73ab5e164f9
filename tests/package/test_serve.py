"""`netspec serve`: the HTTP endpoints, the file watcher, and the page in a real headless
Chromium (edits show up within 2 s, errors with line and caret, clicks collapse blocks,
nothing in a spec runs as script)."""
from __future__ import annotations

import html
import json
import time
import urllib.error
import urllib.request

import pytest

from netspec.serve import Server, Settings
from tests.package.browser import chromium, wait_for

SPEC = '''\
## A small model for the live page.
block Enc(d):
    fc: Linear(d, d)
    act: ReLU()

model M(d=8):
    input x: float[B=2, d]
    enc: Enc(d)
    out: Linear(d, 4)
    head y: classify
'''

EXTRA = SPEC.replace("    out: Linear(d, 4)\n", "    extra: Linear(d, d)\n    out: Linear(d, 4)\n")
BROKEN = EXTRA.replace("extra: Linear(d, d)", "extra: Lienar(d, d)")

HOSTILE = '''\
## </title><script>document.body.dataset.pwned = 1</script><img src=x onerror="document.body.dataset.pwned=2">
model Evil(d=4):
    input x: float[B=1, d]
    fc: Linear(d, d)   ## "><svg onload="document.body.dataset.pwned=3"> \\\\ & </text>
    head y: regress
'''


def _get(url: str, host: str | None = None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), r.read()


def _ids(svg: str) -> str:
    return html.unescape(svg)  # Graphviz writes the '-' of an id as &#45;


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text(SPEC)
    server = Server(Settings(str(path)), port=0).start()
    yield server, path
    server.stop()


def _save(path, text):
    """Write as an editor saves; the size or mtime changes, so the watcher sees it."""
    path.write_text(text)


def test_endpoints_state_svg_and_headers(served):
    server, path = served
    status, headers, body = _get(server.url + "api/state")
    state = json.loads(body)
    assert status == 200 and state == {"version": 1, "error": None, "file": str(path), "model": "M",
                                       "params": 8 * 8 + 8 + 8 * 4 + 4, "depth": None}
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    svg = json.loads(_get(server.url + "api/svg")[2])
    assert svg["version"] == 1 and 'id="c-enc"' in _ids(svg["svg"]) and 'id="n-enc.fc"' in _ids(svg["svg"])
    folded = _ids(json.loads(_get(server.url + "api/svg?collapsed=enc,bad%3Cpath")[2])["svg"])
    assert 'id="x-enc"' in folded and 'id="n-enc.fc"' not in folded  # the bad path is ignored
    page = _get(server.url)[2].decode()
    assert '<script src="/app.js" defer></script>' in page and page.count("<script") == 1
    assert _get(server.url + "app.js")[1]["Content-Type"].startswith("text/javascript")
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server.url + "nothing")
    assert e.value.code == 404


def test_other_host_names_are_refused_on_loopback(served):
    server, _ = served
    port = server.httpd.server_address[1]
    assert _get(server.url + "api/state", host=f"localhost:{port}")[0] == 200
    for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.evil.test:{port}"):
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(server.url + "api/state", host=host)
        assert e.value.code == 403


def test_watcher_keeps_the_last_good_diagram_and_reports_errors(served):
    server, path = served
    live = server.live
    _save(path, BROKEN)
    wait_for(lambda: live.state()["version"] >= 2, 5, "the watcher to see the broken file")
    state = live.state()
    assert state["model"] == "M"  # the last good analysis stays
    assert state["error"].splitlines() == [
        f"{path}:9:12: error: unknown layer 'Lienar' (did you mean 'Linear'?)",
        "        extra: Lienar(d, d)", "               ^~~~~~"]
    assert 'id="n-extra"' not in _ids(live.svg(frozenset(), frozenset())[1])
    _save(path, EXTRA)
    wait_for(lambda: live.state()["error"] is None and live.state()["version"] >= 3, 5, "the fix")
    assert 'id="n-extra"' in _ids(live.svg(frozenset(), frozenset())[1])


def test_imported_files_are_watched(tmp_path):
    lib = tmp_path / "lib.nn"
    lib.write_text("block Enc(d):\n    fc: Linear(d, d)\n")
    main = tmp_path / "m.nn"
    main.write_text("import lib\n\nmodel M(d=8):\n    input x: float[B=2, d]\n    enc: lib.Enc(d)\n    head y: regress\n")
    server = Server(Settings(str(main)), port=0).start()
    try:
        assert lib in server.live.watched and main in server.live.watched
        lib.write_text("block Enc(d):\n    fc: Linear(d, d)\n    act: GELU()\n")
        wait_for(lambda: 'id="n-enc.act"' in _ids(server.live.svg(frozenset(), frozenset())[1] or ""), 5,
                 "the imported block's change")
    finally:
        server.stop()


def test_serve_command_refuses_stdin_and_unknown_files(capsys):
    from netspec.cli import main
    assert main(["serve", "-"]) == 1
    assert "standard input cannot be watched" in capsys.readouterr().err
    assert main(["serve", "no_such_spec_anywhere", "--port", "0"]) == 1
    assert "no_such_spec_anywhere" in capsys.readouterr().err


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def _has(driver, css: str) -> bool:
    return driver.execute_script("return document.querySelector(arguments[0]) !== null", css)


def test_page_live_updates_errors_and_collapse(served, browser):
    server, path = served
    d = browser
    d.get(server.url)
    wait_for(lambda: _has(d, '#canvas svg g.node[id="n-enc.fc"]'), 10, "the diagram")
    assert d.execute_script("return document.getElementById('summary').textContent") == "M · 108 parameters"

    _save(path, EXTRA)  # an edit shows up within 2 s
    t0 = time.monotonic()
    wait_for(lambda: _has(d, '#canvas svg g.node[id="n-extra"]'), 2.0, "the edit on the page")
    assert time.monotonic() - t0 < 2.0

    _save(path, BROKEN)  # a broken edit: the error with its line and caret, the last diagram stays
    error = wait_for(lambda: d.execute_script(
        "const e = document.getElementById('error'); return e.hidden ? null : e.textContent"), 2.0, "the error")
    assert error.splitlines() == [f"{path}:9:12: error: unknown layer 'Lienar' (did you mean 'Linear'?)",
                                  "        extra: Lienar(d, d)", "               ^~~~~~"]
    assert _has(d, '#canvas svg g.node[id="n-extra"]') and _has(d, "#canvas.stale")

    _save(path, EXTRA)
    wait_for(lambda: d.execute_script("return document.getElementById('error').hidden"), 2.0, "the error to go")

    # a click on the block's cluster collapses it into one node; a click on that node opens it again
    d.execute_script("""const t = document.querySelector('g.cluster[id="c-enc"] text');
                        t.dispatchEvent(new MouseEvent('click', {bubbles: true}));""")
    wait_for(lambda: _has(d, 'g.node[id="x-enc"]') and not _has(d, 'g.node[id="n-enc.fc"]'), 5, "the collapse")
    d.execute_script("""document.querySelector('g.node[id="x-enc"] text')
                        .dispatchEvent(new MouseEvent('click', {bubbles: true}));""")
    wait_for(lambda: _has(d, 'g.node[id="n-enc.fc"]'), 5, "the expansion")

    # hovering a layer shows its path, output shape and parameters
    from selenium.webdriver import ActionChains
    node = d.find_element("css selector", 'g.node[id="n-enc.fc"] path, g.node[id="n-enc.fc"] polygon')
    ActionChains(d).move_to_element(node).perform()
    tip = wait_for(lambda: d.execute_script(
        "const t = document.getElementById('tip'); return t.hidden ? null : t.textContent"), 5, "the tooltip")
    assert tip.splitlines() == ["enc.fc", "Linear(8, 8)", "output: [2, 8]", "parameters: 72"]


def test_page_never_runs_spec_text(tmp_path, browser):
    path = tmp_path / "evil.nn"
    path.write_text(HOSTILE)
    server = Server(Settings(str(path)), port=0).start()
    try:
        d = browser
        d.get(server.url)
        wait_for(lambda: _has(d, '#canvas svg g.node[id="n-fc"]'), 10, "the diagram")
        time.sleep(0.5)  # time for anything injected to run
        assert d.execute_script("return document.body.dataset.pwned") is None
        assert d.execute_script("return document.scripts.length") == 1
        assert d.execute_script("return document.querySelectorAll('#canvas img, #canvas script').length") == 0
        text = d.execute_script("return document.querySelector('#canvas svg').textContent")
        assert "</title><script>document.body.dataset.pwned = 1</script>" in text  # shown as text
    finally:
        server.stop()
