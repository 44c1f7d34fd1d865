"""`netspec draw` and `netspec report`: every shipped spec drawn both ways, checked as XML.

The shapes each picture shows are compared with `netspec check --json`'s, every
layer must be drawn exactly once, no two layers' bodies may overlap, and the
picture must be of a sane size. The browser test (test_browser.py) looks at them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import routine
from random_nets import random_spec

import netspec
from netspec.cli import main
from netspec.kinds import Layer
from netspec.network import Library
from netspec.picture import draw
from netspec.picture.report import report

ROOT = Path(__file__).resolve().parent.parent
SPECS = [p for p in sorted((ROOT / "specs").rglob("*.ns")) if routine(p)]
SVG = "{http://www.w3.org/2000/svg}"
BODY = {"face", "merge", "node-box"}   # the classes of a layer's body (not labels, kernels)


def check_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """What `netspec check --json` says about the spec: its layers by name."""
    assert main(["check", "--json", "-q", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    return {layer["name"]: layer for layer in out["layers"]}


def groups(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]


def body_box(g: ET.Element) -> tuple[float, float, float, float]:
    """The bounding box of a layer's body, from the drawn geometry itself."""
    xs: list[float] = []
    ys: list[float] = []
    for el in g.iter():
        if not set((el.get("class") or "").split()) & BODY:
            continue
        if el.tag == f"{SVG}polygon":
            for pair in el.get("points").split():
                x, y = map(float, pair.split(","))
                xs.append(x)
                ys.append(y)
        elif el.tag == f"{SVG}rect":
            x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
            xs += [x, x + w]
            ys += [y, y + h]
        elif el.tag == f"{SVG}circle":
            cx, cy, r = (float(el.get(k)) for k in ("cx", "cy", "r"))
            xs += [cx - r, cx + r]
            ys += [cy - r, cy + r]
    assert xs, f"layer {g.get('data-layers')} has no body"
    return min(xs), min(ys), max(xs), max(ys)


def assert_no_overlap(boxes: list[tuple[tuple[float, float, float, float], str]]) -> None:
    """No two bodies intersect (a sweep along x, so big networks stay fast)."""
    boxes = sorted(boxes)
    active: list[tuple[tuple[float, float, float, float], str]] = []
    for box, name in boxes:
        active = [(b, n) for b, n in active if b[2] > box[0] + 0.5]
        for other, oname in active:
            overlap_y = min(other[3], box[3]) - max(other[1], box[1])
            assert overlap_y <= 0.5, f"{name} overlaps {oname}: {box} and {other}"
        active.append((box, name))


def check_picture(svg: str, layers: dict[str, dict], min_size: float = 100) -> None:
    drawn: list[str] = []
    boxes = []
    for g in groups(svg):
        names = g.get("data-layers").split()
        drawn += names
        last = layers[names[-1]]
        labels = [t.text for t in g.iter(f"{SVG}text")
                  if t.get("class") in ("shape", "shape-edge")]
        assert labels == ["×".join(map(str, last["output"]))], names
        title = g.find(f"{SVG}title").text
        assert names[0] in title
        assert int(g.get("data-line")) == layers[names[0]]["line"]
        boxes.append((body_box(g), names[0]))
    inference = [name for name, layer in layers.items() if not layer.get("aux")]
    assert sorted(drawn) == sorted(inference), "every layer drawn exactly once (aux heads: never)"
    assert_no_overlap(boxes)
    root = ET.fromstring(svg)
    w, h = float(root.get("width")), float(root.get("height"))
    assert min_size < w < 20_000 and min_size < h < 100_000, (w, h)
    for el in root.iter():   # self-contained: nothing loaded from elsewhere
        assert el.tag not in (f"{SVG}script", f"{SVG}image", f"{SVG}foreignObject")
        for key, value in el.attrib.items():
            if key.endswith("href"):
                assert value.startswith("#"), value


def test_the_specs_are_found() -> None:
    assert {"lenet5.ns", "resnet50.ns", "densenet121.ns"} <= {p.name for p in SPECS}


@pytest.mark.parametrize("style", ["volumes", "graph"])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_draws(path: Path, style: str, capsys: pytest.CaptureFixture[str]) -> None:
    net = netspec.load(path, library=True)
    if isinstance(net, Library):
        pytest.skip("a library of blocks, not a network")
    layers = check_json(path, capsys)
    check_picture(draw(net, style), layers)
    check_picture(draw(net, style, depth=2), layers)


@pytest.mark.parametrize("seed", range(30))
def test_random_networks_draw(seed: int) -> None:
    """Every option and nesting the random networks use draws, both ways."""
    net = netspec.parse(random_spec(seed), "r.ns")
    layers = {d["name"]: d for d in net.to_dict()["layers"]}
    for style in ("volumes", "graph"):
        check_picture(draw(net, style), layers, min_size=20)


def test_lenet_volumes_as_in_the_course(capsys: pytest.CaptureFixture[str]) -> None:
    """LeNet-5: a box per volume, labelled H×W×C, the kernels written as the notes write
    them, pooling, fc and softmax each in their own colour, the row left to right."""
    svg = draw(netspec.load(ROOT / "specs/lenet5.ns"), "volumes")
    gs = {g.get("data-layers"): g for g in groups(svg)}
    assert list(gs) == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3",
                        "softmax1"]
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    for label in ("32×32×3", "28×28×6", "14×14×6", "10×10×16", "5×5×16", "5×5, s1, p0",
                  "max 2×2, s2, p0"):
        assert label in texts
    xs = [body_box(g)[0] for g in gs.values()]
    assert xs == sorted(xs)
    heights = {n: body_box(g)[3] - body_box(g)[1] for n, g in gs.items()}
    assert heights["input"] > heights["conv1"] > heights["pool1"] > heights["pool2"]

    def fills(name: str) -> set[str]:
        return {e.get("fill") for e in gs[name].iter() if e.get("class") == "face"}
    assert len({frozenset(fills(n)) for n in ("conv1", "pool1", "fc1", "softmax1")}) == 4
    assert fills("conv1") == fills("conv2")


def test_padding_is_labelled_and_drawn_as_a_border() -> None:
    """`p1`, `same` and `valid` are told apart in the kernel labels (volumes) and the layer
    labels (graph), and the padding a window adds is a border around the H×W face of the
    volume it reads, as wide as its cells: p2 on a 28-high face of side(28) = 10·√28 + 6
    pixels is 2/28 of it."""
    net = netspec.parse("input 28x28x3\nconv 3x3 p2 x8\nconv 3x3 same x8\n"
                        "conv 4x4 valid x8\nconv 4x4 s2 same x8\n", "pad.ns")
    svg = draw(net, "volumes")
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    for label in ("3×3, s1, p2", "3×3, s1, same (p1)", "4×4, s1, valid (p0)",
                  "4×4, s2, same (p1,1,2,2)"):   # 27 → 14: 3 padded cells, 1 before, 2 after
        assert label in texts, texts
    gs = {g.get("data-layers"): g for g in groups(svg)}

    def padding(name: str) -> list[list[tuple[float, float]]]:
        return [[tuple(map(float, xy.split(","))) for xy in e.get("points").split()]
                for e in gs[name].iter(f"{SVG}polygon") if e.get("class") == "padding"]
    assert len(padding("conv1")) == 4 and len(padding("conv2")) == 4
    assert padding("conv3") == []   # valid: nothing added
    top = padding("conv1")[0]        # its first and last corners: the strip's height along H
    assert top[0][0] == top[3][0]
    assert abs((top[3][1] - top[0][1]) - 2 / 28 * (10 * 28 ** 0.5 + 6)) < 0.15
    graph = [t.text for t in ET.fromstring(draw(net, "graph")).iter(f"{SVG}text")]
    assert "conv 3×3 s1 same (p1) ×8" in graph and "conv 3×3 s1 p2 ×8" in graph


def test_residual_and_concat_are_drawn_as_merges() -> None:
    net = netspec.parse("input 8x8x4\nresidual { conv 3x3 p1 x4; relu }\n"
                        "concat { branch { conv 1x1 x2 } branch {} }\n", "t.ns")
    for style in ("volumes", "graph"):
        svg = draw(net, style)
        merges = {g.get("data-layers").split()[0]: g for g in groups(svg)
                  if g.find(f".//{SVG}circle") is not None}
        assert set(merges) == {"add1", "concat1"}
        signs = {n: g.find(f".//{SVG}text").text for n, g in merges.items()}
        assert signs == {"add1": "+", "concat1": "‖"}
        skips = [p for p in ET.fromstring(svg).iter(f"{SVG}path") if p.get("class") == "edge skip"]
        assert len(skips) == 2   # the identity shortcut and the empty branch


def test_depth_collapses_blocks_into_one_box() -> None:
    net = netspec.load(ROOT / "specs/resnet50.ns")
    for style in ("volumes", "graph"):
        gs = groups(draw(net, style, depth=2))
        names = [g.get("data-layers").split()[0] for g in gs]
        blocks = [g for g in gs if g.get("id", "").startswith("layer-layer")]
        assert len(blocks) == 3 + 4 + 6 + 3, names
        texts = {t.text for g in blocks for t in g.iter(f"{SVG}text")}
        assert "layer2.0" in texts
        assert any("c=128, s=2" in t for t in texts)


def test_same_spec_same_bytes() -> None:
    """Deterministic: two processes with different hash seeds write identical files."""
    code = ("import sys, netspec; from netspec.picture import draw; "
            "sys.stdout.write(draw(netspec.load('specs/squeezenet1_1.ns'), 'graph', 2))")
    outs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
                           check=True).stdout for seed in ("1", "2")]
    assert outs[0] == outs[1] and outs[0].startswith("<?xml")


class Mystery(Layer):
    """A kind no picture code knows: it halves the channels."""


Mystery.kind = "mystery"   # set after the class is made: a test double is not registered


def test_an_unknown_kind_draws_as_a_labelled_box(capsys: pytest.CaptureFixture[str]) -> None:
    net = netspec.parse("input 8x8x4\nconv 3x3 p1 x4\nrelu\nfc 3", "t.ns")
    old = net["relu1"]
    new = Mystery(old.pos, "mystery")
    new.name, new.inputs, new.input_shape, new.output_shape = "odd1", old.inputs, (8, 8, 4), (8, 8, 2)
    net.layers[net.layers.index(old)] = new
    net.tree.items[net.tree.items.index(old)] = new   # pictures draw the built tree
    net["fc1"].inputs = [new]
    for style in ("volumes", "graph"):
        g = next(g for g in groups(draw(net, style)) if g.get("data-layers") == "odd1")
        texts = [t.text for t in g.iter(f"{SVG}text")]
        assert "8×8×2" in texts and any("odd1" in t for t in texts)


def test_cli_draw_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "net.ns"
    spec.write_text("input 16x16x3\nconv 3x3 x8 relu\npool 2\nfc 10\n")
    assert main(["draw", str(spec)]) == 0
    assert groups((tmp_path / "net.svg").read_text())
    out = tmp_path / "g.svg"
    assert main(["draw", str(spec), "--style", "graph", "-o", str(out)]) == 0
    assert len(groups(out.read_text())) == 5
    assert main(["draw", str(spec), "-o", str(spec)]) == 2   # never overwrite the spec
    assert spec.read_text().startswith("input")
    assert "would destroy an input" in capsys.readouterr().err
    page = tmp_path / "r.html"
    assert main(["report", str(spec), "-o", str(page)]) == 0
    html = page.read_text()
    for name in ("input", "conv1", "relu1", "pool1", "fc1"):
        assert f'data-name="{name}"' in html
    assert "<script" in html and "http" not in html.replace("http://www.w3.org", "")
    assert main(["draw", str(tmp_path / "missing.ns")]) == 2
    bad = tmp_path / "bad.ns"
    bad.write_text("input 4x4x1\nconv 5x5 x2\n")
    assert main(["draw", str(bad)]) == 1
    assert "bad.ns:2" in capsys.readouterr().err


def test_report_lists_warnings_with_their_source_line() -> None:
    net = netspec.parse("input 8x8x1\nconv 3x3 s2 x2\n", "w.ns")
    assert net.warnings
    html = report(net)
    assert "lost-input" in html and "2 | conv 3x3 s2 x2" in html


def test_check_does_not_load_the_picture_code() -> None:
    code = ("import sys; from netspec.cli import main; main(['check', '-q', 'specs/lenet5.ns']); "
            "print(sorted(m for m in sys.modules if m.startswith('netspec.picture')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("picture", "spec", "args"), [
    ("lenet5.svg", "lenet5.ns", []),
    ("resnet50.svg", "resnet50.ns", ["--style", "volumes", "--depth", "2"]),
    ("squeezenet1_1.svg", "squeezenet1_1.ns", ["--depth", "2"])])
def test_readme_pictures_are_current(picture: str, spec: str, args: list[str], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """docs/ holds what `netspec draw` draws today (regenerate with the same command)."""
    out = tmp_path / picture
    assert main(["draw", str(ROOT / "specs" / spec), "-o", str(out), *args]) == 0
    assert out.read_text() == (ROOT / "docs" / picture).read_text()
