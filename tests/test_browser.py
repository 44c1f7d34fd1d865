"""The pictures in a real browser: headless Chromium opens the SVGs and the report page.

Chromium is driven over its DevTools protocol (a websocket, through the small
`websocket-client` package of the test extra): the test takes screenshots and
asserts they are not blank, and clicks a layer in the report's picture and a row
of its table with real mouse events, asserting that each highlights the other.
It is skipped only where no `chromium` is installed (CI installs Debian's).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import netspec
from netspec.picture import draw
from netspec.picture.report import report

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Browser:
    """A headless Chromium with a fresh profile, and one page driven over DevTools."""

    def __init__(self, profile: Path) -> None:
        import websocket
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params: object) -> dict:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def open(self, path: Path) -> None:
        self.call("Page.navigate", url=path.resolve().as_uri())
        while json.loads(self.ws.recv()).get("method") != "Page.loadEventFired":
            pass

    def js(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click in the middle of the element (scrolled into view first)."""
        box = self.js(f"(function(){{var e = document.querySelector({json.dumps(selector)});"
                      f"e.scrollIntoView({{block: 'center', inline: 'center'}});"
                      f"var r = e.getBoundingClientRect();"
                      f"return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};}})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def assert_not_blank(png: bytes) -> None:
    """Some of the picture differs from the background, in several colours."""
    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert("RGB")
    colours = im.getcolors(maxcolors=1 << 20)
    background = max(colours)[0]
    drawn = im.width * im.height - background
    assert drawn > 0.01 * im.width * im.height, f"only {drawn} pixels drawn"
    assert len(colours) > 20


@pytest.mark.parametrize(("spec", "style", "depth"), [
    ("lenet5", "volumes", None), ("resnet50", "volumes", 2), ("densenet121", "graph", 2),
    ("squeezenet1_1", "graph", None)])
def test_svg_renders(browser: Browser, tmp_path: Path, spec: str, style: str,
                     depth: int | None) -> None:
    svg = tmp_path / f"{spec}.svg"
    svg.write_text(draw(netspec.load(ROOT / "specs" / f"{spec}.ns"), style, depth))
    browser.open(svg)
    assert browser.js("document.querySelectorAll('g.layer').length") > 5
    assert_not_blank(browser.screenshot(tmp_path / f"{spec}-{style}.png"))


def test_report_click_highlights(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "resnet18.html"
    page.write_text(report(netspec.load(ROOT / "specs/resnet18.ns")))
    browser.open(page)
    assert_not_blank(browser.screenshot(tmp_path / "report.png"))
    assert browser.js("document.querySelectorAll('tr[data-name]').length") == 69

    browser.click('g.layer[data-layers~="layer1.0.conv2"] .node-box')
    assert browser.js("document.getElementById('row-layer1.0.conv2').classList.contains('hl')")
    assert browser.js("document.querySelectorAll('tr.hl').length") == 1
    line = browser.js("document.getElementById('row-layer1.0.conv2').dataset.line")
    assert browser.js(f"document.getElementById('L{line}').classList.contains('hl')")
    assert_not_blank(browser.screenshot(tmp_path / "clicked-node.png"))

    browser.click('tr[data-name="layer2.0.downsample.0"]')
    assert browser.js("document.querySelector('g.layer[data-layers~=\"layer2.0.downsample.0\"]')"
                      ".classList.contains('hl')")
    assert not browser.js("document.getElementById('row-layer1.0.conv2').classList.contains('hl')")

    # sorting: click "params" twice: descending, the largest first, layer4's 3×3 convs
    # over 512 channels into 512 without bias: 3·3·512·512 = 2,359,296
    browser.click("table.ns-table th:nth-child(7)")
    browser.click("table.ns-table th:nth-child(7)")
    params = browser.js("Array.from(document.querySelectorAll('tbody tr')).map("
                        "r => parseFloat(r.cells[6].dataset.v))")
    assert params == sorted(params, reverse=True) and params[0] == 2_359_296


def test_filters_and_feature_maps_render(browser: Browser, tmp_path: Path) -> None:
    """The filters picture and the page of maps in a real browser: every tile is there,
    and the maps' PNG tiles are drawn (the edge map's white columns show on screen)."""
    import numpy as np
    from PIL import Image

    from netspec.picture.filters import filters
    from netspec.picture.maps import feature_maps
    net = netspec.load(ROOT / "specs/mnist_cnn.ns")
    svg = tmp_path / "filters.svg"
    svg.write_text(filters(net, net.init_weights(0)))
    browser.open(svg)
    assert browser.js("document.querySelectorAll('g.tile').length") == 32
    assert_not_blank(browser.screenshot(tmp_path / "filters.png"))

    edges = netspec.parse("input 6x6x1\nedges: conv 3x3 x2 nobias\n", "edges.ns")
    image = np.zeros((1, 1, 6, 6), np.float32)
    image[..., :3] = 10
    weights = dict(np.load(ROOT / "specs/edges.npz"))
    page = tmp_path / "maps.svg"
    page.write_text(feature_maps(edges, edges.numpy_model(weights).activations(image)))
    browser.open(page)
    box = browser.js("(function(){var r = document.querySelector('g.maps[data-layer=edges] "
                     "image').getBoundingClientRect(); return [r.x, r.y, r.width, r.height];})()")
    assert round(box[2]) == 96 and round(box[3]) == 96
    shot = Image.open(io.BytesIO(browser.screenshot(tmp_path / "maps.png"))).convert("L")
    x, y = int(box[0]), int(box[1])
    row = [shot.getpixel((x + i, y + 48)) for i in range(4, 92)]
    assert min(row[:16]) < 30 and max(row[30:58]) > 225   # black edge, white middle columns
