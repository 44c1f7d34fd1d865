"""The documentation site, built and opened: `mkdocs build --strict` succeeds, the pages
load nothing from another host, and in headless Chromium the tutorial renders with its
netspec code highlighted and search works from disk.

The slow part of the documentation's tests (a build, a browser): one module, one build,
one browser. Chromium is driven as tests/test_browser.py drives it; the module is skipped
only where no `chromium` is installed (CI installs Debian's).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Attributes through which a page loads something (a link `<a href>` loads nothing, but
#: the site has none to other hosts either: `href` is checked everywhere).
LOADING_ATTRIBUTE = re.compile(r"""\b(src|href|srcset|poster|data|action|content)\s*=\s*["']?"""
                               r"""\s*((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])\s*((?:https?:)?//[^"')\s]+)""",
                     re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `mkdocs build --strict` writes it."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: "
                        "pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-5000:]
    return out


def test_build_has_every_page(site: Path) -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"^\s*- [^:\n]+: (\S+)\.md$", config, re.MULTILINE)
    assert len(nav) >= 10
    for name in nav:
        assert (site / f"{name}.html").is_file(), name
    # the API reference is made from the docstrings
    api = (site / "api.html").read_text()
    assert 'id="netspec.parse"' in api and 'id="netspec.Network"' in api
    assert "Build one with" in api   # from Network's docstring
    # the command-line reference from the argparse parser: every command
    cli = (site / "cli.html").read_text()
    for command in ("check", "explain", "sizes", "diff", "run", "init", "export", "import",
                    "bench", "draw", "report"):
        assert f'id="netspec-{command}"' in cli, command


def test_nothing_is_loaded_from_another_host(site: Path) -> None:
    """No page, stylesheet or picture names a resource on another host (XML namespaces
    such as `xmlns="http://www.w3.org/2000/svg"` are names, not loads)."""
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix in (".html", ".svg"):
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [(path.name, m[2]) for m in LOADING_ATTRIBUTE.finditer(text)]
            found += [(path.name, m[1]) for m in CSS_URL.finditer(text)]
        elif path.suffix == ".css":
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [(path.name, m[1]) for m in CSS_URL.finditer(text)]
    assert not found, found[:20]


def test_the_check_finds_a_font_from_another_host() -> None:
    """The patterns above do catch what Material loads when its fonts are on."""
    html = ('<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>'
            '<script src="https://unpkg.com/iframe-worker/shim"></script>')
    css = ("@import 'https://fonts.googleapis.com/css?family=Roboto'; "
           "a{background:url(//x.org/i.png)}")
    assert [m[2] for m in LOADING_ATTRIBUTE.finditer(html)] == [
        "https://fonts.gstatic.com", "https://unpkg.com/iframe-worker/shim"]
    assert [m[1] for m in CSS_URL.finditer(css)] == [
        "https://fonts.googleapis.com/css?family=Roboto", "//x.org/i.png"]


# ---- in the browser ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from test_browser import CHROMIUM, Browser
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    b.call("Network.enable")
    yield b
    b.close()


def open_recording(browser, page: Path) -> list[str]:
    """Open `page` and wait for it to load; every URL it requested meanwhile."""
    browser.next_id += 1
    browser.ws.send(json.dumps({"id": browser.next_id, "method": "Page.navigate",
                                "params": {"url": page.resolve().as_uri()}}))
    requested = []
    while True:
        msg = json.loads(browser.ws.recv())
        if msg.get("method") == "Network.requestWillBeSent":
            requested.append(msg["params"]["request"]["url"])
        elif msg.get("method") == "Page.loadEventFired":
            return requested


def wait_for(browser, expression: str, seconds: float = 20) -> object:
    """The value of `expression` once it is truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = browser.js(expression)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_tutorial_renders_highlighted_from_disk(site: Path, browser, tmp_path: Path) -> None:
    from test_browser import assert_not_blank
    requested = open_recording(browser, site / "tutorial.html")
    # everything it loads is on disk (or inline data)
    hosts = {urlparse(u).scheme + "://" + urlparse(u).netloc for u in requested
             if urlparse(u).scheme not in ("file", "data", "blob", "about")}
    assert not hosts, sorted(hosts)
    assert any(u.endswith(".svg") for u in requested)   # the pictures
    assert browser.js("document.querySelector('h1').textContent").startswith("Tutorial")
    assert browser.js("document.body.innerText.length") > 10_000
    # the netspec code is highlighted: Pygments' token classes, each in its own colour
    spans = browser.js("""(function () {
        const code = document.querySelectorAll('div.language-netspec code');
        const seen = {};
        for (const block of code) for (const s of block.querySelectorAll('span[class]'))
            seen[s.className] = getComputedStyle(s).color;
        return {blocks: code.length, colours: seen};
    })()""")
    assert spans["blocks"] >= 8
    colours = spans["colours"]
    # keyword, size, option, label, comment, string: six colours (docs/stylesheets/
    # netspec.css gives options and labels theirs); a number is a size's colour
    tokens = ("k", "m", "na", "nl", "c1", "s2")
    for token in (*tokens, "mi"):
        assert token in colours, (token, sorted(colours))
    assert len({colours[t] for t in tokens}) == len(tokens), colours
    assert colours["mi"] == colours["m"]
    # the pictures have drawn: an <img> of an SVG with its natural size
    assert wait_for(browser, "Array.from(document.images).filter(i => i.src.endsWith('.svg')"
                             " && i.complete && i.naturalWidth > 0).length") >= 8
    assert_not_blank(browser.screenshot(tmp_path / "tutorial.png"))


def test_search_works_from_disk(site: Path, browser) -> None:
    """Material's search runs in a web worker, which a file:// page may not start; the
    bundled iframe-worker shim stands in for it, so searching finds the tutorial."""
    open_recording(browser, site / "index.html")
    browser.js("document.querySelector('input.md-search__input').focus()")
    browser.call("Input.insertText", text="padding")   # typed, as a keyboard would
    found = wait_for(browser, "Array.from(document.querySelectorAll("
                              "'.md-search-result__item a')).map(a => a.href).join(' ')")
    assert found and "tutorial.html" in found
