"""An exported file opens in Netron (its pip package serves the viewer on 127.0.0.1; headless
Chromium renders it): the graph appears with the spec's layer names and the dynamic batch."""
from __future__ import annotations

import netron

from netspec.compiler.builder import build
from netspec.compiler.export import export_onnx
from tests.package.browser import chromium, wait_for

ACCEPT = """const b = Array.from(document.querySelectorAll('button'))
    .find(b => b.textContent.trim() === 'Accept' && b.offsetParent !== null);
if (b) { b.click(); return true; } return false;"""


def open_in_netron(path, screenshot=None, size=(1000, 1400)) -> list[str]:
    """The text of every node Netron draws for `path` (and a screenshot when asked)."""
    host, port = netron.start(str(path), address=("127.0.0.1", 0), browse=False)
    driver = chromium()
    try:
        driver.set_window_size(*size)
        driver.get(f"http://{host}:{port}/")
        wait_for(lambda: driver.execute_script(ACCEPT), 30, "Netron's first-run notice")  # it waits for this
        wait_for(lambda: driver.execute_script("return document.querySelectorAll('g.node').length"), 60,
                 "Netron to draw the graph")
        if screenshot:
            driver.save_screenshot(str(screenshot))
        return driver.execute_script("return Array.from(document.querySelectorAll('g.node'), n => n.textContent)")
    finally:
        driver.quit()
        netron.stop()


def test_exported_lenet_opens_in_netron(tmp_path):
    path = tmp_path / "lenet.onnx"
    export_onnx(build("lenet"), path, check=False)
    texts = open_in_netron(path)
    assert texts[0] == "xfloat32[B,1,32,32]"  # the input, its dynamic batch named as in the spec
    assert texts[-1] == "logitsfloat32[B,10]"  # the head
    layers = [t.split("float32")[0] for t in texts if "/" in t and not t.startswith(("Shape", "Squeeze"))]
    assert layers[:5] == ["Convconv1/Conv", "Tanhact1/Tanh", "AveragePoolpool1/AveragePool", "Convconv2/Conv",
                          "Tanhact2/Tanh"]
    assert layers[-5:] == ["Gemmfc1/Gemm", "Tanhact3/Tanh", "Gemmfc2/Gemm", "Tanhact4/Tanh", "Gemmfc3/Gemm"]
