"""Images in, feature maps out: the course's vertical-edge example on a real PNG.

Expected values come from the notes' arithmetic: the filter [1 0 −1] (three rows)
over an image whose left half is 1 and right half 0 gives 3·(x[j] − x[j+2]), so 3
on the two columns where the window straddles the edge and 0 elsewhere. PNGs are
read back with Pillow, an outside decoder.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from netspec.cli import main
from netspec.data.images import grid, png_bytes

PIL = pytest.importorskip("PIL")
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def half_image(path: Path, size: int = 256) -> None:
    a = np.zeros((size, size), np.uint8)
    a[:, : size // 2] = 255
    Image.fromarray(a).save(path)


def test_vertical_edge_band(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo, out, maps = tmp_path / "half.png", tmp_path / "y.npy", tmp_path / "maps"
    half_image(photo)
    assert main(["run", str(ROOT / "specs/edges.ns"), "--weights", str(ROOT / "specs/edges.npz"),
                 "--input", str(photo), "-o", str(out), "--maps", str(maps)]) == 0
    y = np.load(out)
    assert y.shape == (1, 2, 254, 254)
    expected = np.zeros((254, 254), np.float32)
    expected[:, 126:128] = 3.0            # columns j where x[j] = 1 and x[j + 2] = 0
    np.testing.assert_allclose(y[0, 0], expected, atol=1e-6)
    np.testing.assert_allclose(y[0, 1], 0, atol=1e-6)   # no horizontal edge anywhere
    assert sorted(p.name for p in maps.iterdir()) == ["000_input.png", "001_edges.png", "maps.svg"]
    tiles = np.asarray(Image.open(maps / "001_edges.png"))
    assert tiles.shape == (254, 254 * 2 + 2)             # two tiles side by side, a 2-pixel gap
    band = tiles[:, :254]
    assert (band[:, 126:128] == 255).all() and (band[:, :126] == 0).all()   # shared scale 0..3
    assert (tiles[:, 256:] == 0).all()   # the horizontal tile: 0 on the same scale, black


def test_image_is_resized_to_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "wide.jpg"
    Image.new("RGB", (64, 40), (255, 0, 0)).save(photo)
    spec = tmp_path / "net.ns"
    spec.write_text("input 16x16x3\nconv 3x3 x4\n")
    assert main(["run", str(spec), "--input", str(photo)]) == 0
    out = capsys.readouterr().out
    assert "from 64×40 to the input's 16×16" in out and "1×4×14×14" in out


def test_png_writer_matches_pillow() -> None:
    a = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5) * 7
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(a))))
    np.testing.assert_array_equal(decoded, a)


def test_grid_shared_scale() -> None:
    maps = np.stack([np.full((2, 2), -1.0), np.full((2, 2), 1.0), np.zeros((2, 2))])
    g = grid(maps)                                # 2-pixel maps enlarged 24 times, to 48
    assert g.shape == (2 * 48 + 2, 2 * 48 + 2)    # 3 tiles in a 2×2 grid, 2-pixel gaps
    assert g[0, 0] == 0 and g[0, 48 + 2] == 255 and g[50, 0] == 128   # -1, 1 and 0


def test_image_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "two.ns"
    spec.write_text("input 8x8x2\nconv 3x3 x1\n")
    photo = tmp_path / "p.png"
    half_image(photo, 8)
    assert main(["run", str(spec), "--input", str(photo)]) == 1
    assert "H×W×1 or H×W×3" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert main(["run", str(ROOT / "specs/edges.ns"), "--input", str(broken)]) == 1
    assert "cannot read image" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "PIL", None)   # as if Pillow were not installed
    assert main(["run", str(ROOT / "specs/edges.ns"), "--input", str(photo)]) == 1
    err = capsys.readouterr().err
    assert "needs Pillow" in err and "netspec[images]" in err and "Traceback" not in err


def test_maps_skip_an_aux_head_and_never_overwrite_an_input(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    # an aux head is not computed at inference: it has no map (it used to be a KeyError)
    spec = tmp_path / "aux.ns"
    spec.write_text("input 8x8x3\nconv 3x3 p1 x4\naux { pool avg global; flatten; fc 2 }\n"
                    "conv 3x3 x2\n")
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 3, 8, 8), np.float32))
    maps = tmp_path / "maps"
    assert main(["run", str(spec), "--input", str(x), "--maps", str(maps)]) == 0
    names = sorted(p.name for p in maps.iterdir())
    assert names == ["000_input.png", "001_conv1.png", "005_conv2.png", "maps.svg"], names
    page = (maps / "maps.svg").read_text()
    assert 'data-layer="conv2"' in page and 'data-layer="pool1"' not in page   # the aux pool
    # the folder already holds a file named as a map would be, and it is the spec
    clash = maps / "001_conv1.png"
    clash.write_text(spec.read_text())
    before = clash.read_bytes()
    assert main(["run", str(clash), "--input", str(x), "--maps", str(maps)]) == 2
    assert "is the SPEC file" in capsys.readouterr().err
    assert clash.read_bytes() == before
    assert main(["run", str(spec), "--input", str(x), "--maps", str(x)]) == 2   # a file
    assert "not a folder" in capsys.readouterr().err
