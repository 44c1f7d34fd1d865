"""The learnt-filters picture (`netspec draw --filters`) and the page of feature maps
(`netspec run --maps`), read as XML: a tile per filter (and input channel), one colour
scale for the whole layer with its legend, labels; each layer's maps on one grey scale.

Expected colours are derived here from the scale the pictures document: white at 0, red
(178, 24, 43) at +m and blue (33, 102, 172) at −m, linear in between, m the layer's
largest |weight|; in colour tiles each channel is 255·(1/2 + w/2m).
"""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.picture.filters import filters
from netspec.picture.maps import feature_maps

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
EDGES = "input 6x6x1\nedges: conv 3x3 x2 nobias\n"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True,
                          text=True, cwd=cwd)


def tiles(svg: str) -> list[ET.Element]:
    return [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "tile"]


def pixels(tile: ET.Element) -> list[str]:
    """A filter tile's weights' colours, row by row (the frame left out)."""
    return [r.get("fill") for r in tile.iter(f"{SVG}rect") if r.get("class") != "frame"]


def texts(svg: str) -> list[str]:
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def shade(end: tuple[int, int, int], t: float) -> str:
    """The colour a fraction t of the way from white to `end`."""
    return "#" + "".join(f"{round(255 + (e - 255) * t):02x}" for e in end)


RED, BLUE = (178, 24, 43), (33, 102, 172)


def test_the_courses_edge_filters_tile_by_tile():
    """specs/edges.npz: [1 0 −1] in three rows and its transpose, m = 1: two tiles of 3×3,
    red where the weight is 1, white at 0, blue at −1, labelled, with the legend's range."""
    net = netspec.parse(EDGES, "edges.ns")
    weights = dict(np.load(ROOT / "specs/edges.npz"))
    svg = filters(net, weights, source="specs/edges.npz")
    root = ET.fromstring(svg)
    assert root.get("data-layer") == "edges" and float(root.get("data-scale")) == 1.0
    vertical, horizontal = tiles(svg)
    assert [t.get("data-filter") for t in (vertical, horizontal)] == ["0", "1"]
    red, white, blue = shade(RED, 1), "#ffffff", shade(BLUE, 1)
    assert pixels(vertical) == [red, white, blue] * 3
    assert pixels(horizontal) == [red] * 3 + [white] * 3 + [blue] * 3
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    assert (float(legend.get("data-low")), float(legend.get("data-high"))) == (-1.0, 1.0)
    words = texts(svg)
    assert "filter 0" in words and "filter 1" in words and "−1" in words and "1" in words
    assert any("2 filters of 3×3×1" in w for w in words)
    assert not any(w.startswith("b = ") for w in words)   # nobias: no bias to print


def test_one_scale_for_every_filter():
    """A filter of small weights is drawn pale, not stretched to its own range: with
    m = 2, a weight of 0.5 is a quarter of the way to red and −0.5 to blue."""
    net = netspec.parse("input 4x4x1\nc: conv 1x2 x2\n", "s.ns")
    weights = {"c.weight": np.array([[[[2.0, -1.0]]], [[[0.5, -0.5]]]], np.float32),
               "c.bias": np.array([0.25, -3.0], np.float32)}
    svg = filters(net, weights)
    big, small = tiles(svg)
    assert pixels(big) == [shade(RED, 1), shade(BLUE, 0.5)]
    assert pixels(small) == [shade(RED, 0.25), shade(BLUE, 0.25)]
    assert "b = 0.25" in texts(svg) and "b = −3" in texts(svg)


def test_input_channels_as_tiles_or_in_colour():
    """Over two channels a filter is a row of two tiles, channels named; over three (RGB)
    one tile in colour, each channel 255·(1/2 + w/2m): (m, 0, −m) is (255, 128, 0)."""
    net = netspec.parse("input 5x5x2\nconv 3x3 x4\n", "two.ns")
    svg = filters(net, net.init_weights(0))
    ts = tiles(svg)
    assert len(ts) == 4 * 2
    assert [(t.get("data-filter"), t.get("data-input")) for t in ts[:2]] == [("0", "0"),
                                                                             ("0", "1")]
    assert "in 0" in texts(svg) and "in 1" in texts(svg)
    net = netspec.parse("input 5x5x3\nc: conv 1x1 x1 nobias\n", "rgb.ns")
    svg = filters(net, {"c.weight": np.array([[[[4.0]], [[0.0]], [[-4.0]]]], np.float32)})
    (tile,) = tiles(svg)
    assert tile.get("data-input") == "rgb" and pixels(tile) == ["#ff8000"]


def test_grouped_filters_name_the_channels_they_read():
    """conv 1x1 g2 x4 over 4 channels: filters 2 and 3 read channels 2 and 3."""
    net = netspec.parse("input 5x5x4\nconv 1x1 g2 x4\n", "g.ns")
    ts = tiles(filters(net, net.init_weights(0)))
    assert [(t.get("data-filter"), t.get("data-input")) for t in ts] == [
        ("0", "0"), ("0", "1"), ("1", "0"), ("1", "1"),
        ("2", "2"), ("2", "3"), ("3", "2"), ("3", "3")]


def test_an_fc_layer_over_a_volume_has_filters_as_large_as_its_input():
    """Each unit of `fc 3` over 4×4×1 weighs the whole input: a 4×4 tile per unit, read in
    the C-major order torch flattens N×C×H×W."""
    net = netspec.parse("input 4x4x1\nfc 3\n", "fc.ns")
    w = np.zeros((3, 16), np.float32)
    w[1, 4] = 1.0   # unit 1, row 1, column 0
    svg = filters(net, {"fc1.weight": w, "fc1.bias": np.zeros(3, np.float32)})
    ts = tiles(svg)
    assert len(ts) == 3 and len(pixels(ts[0])) == 16
    assert [i for i, p in enumerate(pixels(ts[1])) if p != "#ffffff"] == [4]
    assert any("each unit's weights over the whole input" in t for t in texts(svg))


def test_many_filters_are_capped_and_say_so():
    net = netspec.parse("input 4x4x1\nconv 1x1 x100\n", "many.ns")
    svg = filters(net, net.init_weights(0))
    assert len(tiles(svg)) == 64 and "the first 64 of 100 filters" in texts(svg)


def _png_rows(uri: str) -> list[bytes]:
    """The rows of a grey 8-bit PNG as netspec writes it (one IDAT, filter 0 per row)."""
    data = base64.b64decode(uri.split(",", 1)[1])
    w, h = struct.unpack(">II", data[16:24])
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4:idat])[0]
    raw = zlib.decompress(data[idat + 4:idat + 4 + size])
    return [raw[r * (w + 1) + 1:(r + 1) * (w + 1)] for r in range(h)]


def test_feature_maps_share_one_scale_per_layer_and_are_labelled():
    """The vertical edge filter on a 6×6 image, light (10) on its left half, gives 30 down
    the middle columns of a 4×4 map (3·(10 − 0) per row); the horizontal filter gives 0
    everywhere. On the layer's one scale (0 black, 30 white) the second map is all black,
    not the flat grey a scale of its own would give; each map is enlarged 24 times (96 px)."""
    net = netspec.parse(EDGES, "edges.ns")
    weights = dict(np.load(ROOT / "specs/edges.npz"))
    image = np.zeros((1, 1, 6, 6), np.float32)
    image[..., :3] = 10
    page = feature_maps(net, net.numpy_model(weights).activations(image), 0, "the test")
    root = ET.fromstring(page)
    layers = {g.get("data-layer"): g for g in root.iter(f"{SVG}g") if g.get("class") == "maps"}
    assert list(layers) == ["input", "edges"]
    edges = layers["edges"]
    assert (float(edges.get("data-low")), float(edges.get("data-high"))) == (0.0, 30.0)
    vertical, horizontal = [t for t in edges.iter(f"{SVG}g") if t.get("class") == "tile"]
    rows = _png_rows(vertical.find(f"{SVG}image").get("href"))
    assert len(rows) == 96 and rows[0] == bytes([0] * 24 + [255] * 48 + [0] * 24)
    assert set(b"".join(_png_rows(horizontal.find(f"{SVG}image").get("href")))) == {0}
    words = texts(page)
    assert "edges · conv 3x3 x2 nobias · 4×4×2" in words and "ch 0" in words
    assert "ch 1" in words and any(w.startswith("the test") for w in words)


def test_draw_filters_and_run_maps_on_the_command_line(tmp_path: Path):
    spec = tmp_path / "lenet5.ns"
    spec.write_text((ROOT / "specs/lenet5.ns").read_text())
    w = tmp_path / "w.npz"
    assert run("init", str(spec), "-o", str(w)).returncode == 0
    r = run("draw", str(spec), "--filters", str(w))
    assert r.returncode == 0, r.stderr
    svg = (tmp_path / "lenet5-filters.svg").read_text()
    assert ET.fromstring(svg).get("data-layer") == "conv1" and len(tiles(svg)) == 6
    r = run("draw", str(spec), "--filters", str(w), "--layer", "conv2", "-o", "-")
    assert r.returncode == 0 and len(tiles(r.stdout)) == 16 * 6
    for args, message in (
            (("--filters", str(w), "--layer", "pool1"), "`pool1` (pool 2 s2) has no filters"),
            (("--filters", str(w), "--layer", "cnov1"), "did you mean `conv1`"),
            (("--layer", "conv1"), "give --filters W.npz too"),
            (("--filters", str(w), "--depth", "2"), "give one or the other"),
            (("--filters", str(tmp_path / "none.npz")), "no such weights file")):
        r = run("draw", str(spec), *args, "-o", str(tmp_path / "bad.svg"))
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert not (tmp_path / "bad.svg").exists()
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32))
    r = run("run", str(spec), "--weights", str(w), "--input", str(x), "--maps",
            str(tmp_path / "maps"), "--sample", "1")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "maps" / "maps.svg").read_text()
    assert "sample 1 of" in page and (tmp_path / "maps" / "001_conv1.png").exists()
    r = run("run", str(spec), "--weights", str(w), "--input", str(x), "--maps",
            str(tmp_path / "page.svg"))
    assert r.returncode == 0 and (tmp_path / "page.svg").exists()
    r = run("run", str(spec), "--weights", str(w), "--input", str(x), "--maps",
            str(tmp_path / "m2"), "--sample", "2")
    assert r.returncode == 2 and "--sample 2 is past the end of the batch of 2" in r.stderr
    assert not (tmp_path / "m2").exists()


@pytest.mark.parametrize("path", [ROOT / "specs/mnist_cnn.ns", ROOT / "specs/alexnet.ns"])
def test_zoo_first_layers_draw(path: Path):
    net = netspec.load(path)
    svg = filters(net, net.init_weights(0))
    first = next(lay for lay in net.layers if lay.weight_shapes())
    assert ET.fromstring(svg).get("data-layer") == first.name
    assert len(tiles(svg)) == min(64, first.output_shape[-1]) * \
        (1 if first.input_shape[-1] in (1, 3) else min(16, first.input_shape[-1]))
