"""Images in and out: a PNG/JPEG as the network's input, each layer's maps as a PNG grid.

Reading an image needs Pillow (`pip install 'netspec[images]'`), imported only
when an image is read; writing the maps needs only NumPy and the standard
library (a PNG is a zlib stream of rows), so `--maps` works with `.npy` inputs
without Pillow. As in the course's edge-detection example, the maps show what
each filter responds to: one tile per channel, all tiles of a layer on one
shared grey scale (its smallest value black, its largest white), so tiles can be
compared with each other.
"""

from __future__ import annotations

import struct
import zlib
from math import ceil, sqrt
from pathlib import Path
from typing import TYPE_CHECKING

from ..source.diagnostics import Diagnostic, InputError
from ..source.files import atomic_write

if TYPE_CHECKING:
    import numpy as np

    from ..network import Network

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_TILE = 48      # small maps are enlarged (by whole pixels) to at least this size
MAX_PIXELS = 40_000_000   # a bigger image is refused before it is decoded


def is_image(path: str | Path) -> bool:
    """Whether the path names a PNG or JPEG file (by its suffix)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def load_image(path: str | Path, shape: tuple[int, ...]) -> tuple[np.ndarray, str | None]:
    """The image as a 1×C×H×W float32 batch in [0, 1] for an input of `shape` (H, W, C).

    C = 1 reads the image as grey, C = 3 as RGB; an image of another size is
    resized (bilinear) to H×W, and the second value then says so.
    """
    import numpy as np
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise InputError(Diagnostic(
            "error", f"an image can only feed an H×W×1 or H×W×3 input, not "
                     f"{'×'.join(map(str, shape))}", str(path),
            hint="give the input as a .npy batch instead"))
    try:
        from PIL import Image
    except ImportError:
        raise InputError(Diagnostic(
            "error", "reading PNG or JPEG images needs Pillow, which is not installed",
            str(path), hint="pip install 'netspec[images]' (or give a .npy batch)")) from None
    h, w, c = shape
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InputError(Diagnostic("error", f"the image is {im.width}×{im.height} "
                                            f"pixels, more than {MAX_PIXELS:,}", str(path)))
            size = im.size
            im = im.convert("L" if c == 1 else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(Diagnostic("error", f"cannot read image: {err}", str(path))) from None
    note = None
    if size != (w, h):
        im = im.resize((w, h), Image.Resampling.BILINEAR)
        note = f"resized {path} from {size[0]}×{size[1]} to the input's {w}×{h}"
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = x[None, None] if c == 1 else x.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x), note


def grid(maps: np.ndarray) -> np.ndarray:
    """C×H×W maps as one grey uint8 image: a tile per channel, on a shared scale."""
    import numpy as np
    c, h, w = maps.shape
    cols = ceil(sqrt(c))
    rows = ceil(c / cols)
    zoom = max(1, ceil(MIN_TILE / max(h, w)))
    lo, hi = float(maps.min()), float(maps.max())
    scaled = (maps - lo) * (255.0 / (hi - lo)) if hi > lo else np.full(maps.shape, 127.5)
    tiles = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    tiles = tiles.repeat(zoom, axis=1).repeat(zoom, axis=2)
    th, tw, gap = h * zoom, w * zoom, 2
    out = np.full((rows * (th + gap) - gap, cols * (tw + gap) - gap), 200, np.uint8)
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (th + gap):r * (th + gap) + th, q * (tw + gap):q * (tw + gap) + tw] = tiles[i]
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """A grey uint8 H×W array as the bytes of a PNG file."""
    h, w = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + image[i].tobytes() for i in range(h))   # filter 0 per row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def map_paths(net: Network, directory: str | Path) -> dict[str, Path]:
    """Where `write_maps` puts each volume layer's picture, by layer name: `NNN_name.png`.

    Vectors (after fc or flatten) have no picture, and `aux` heads are not computed
    at inference, so neither is listed.
    """
    directory = Path(directory)
    return {layer.name: directory / f"{i:03d}_{layer.name}.png"
            for i, layer in enumerate(net.layers)
            if len(layer.output_shape) == 3 and not layer.aux}


def write_maps(net: Network, activations: dict[str, np.ndarray], directory: str | Path,
               sample: int = 0) -> list[Path]:
    """Write each volume layer's output for one sample (see `map_paths`); the paths written."""
    paths = map_paths(net, directory)
    Path(directory).mkdir(parents=True, exist_ok=True)
    for name, path in paths.items():
        data = png_bytes(grid(activations[name][sample]))
        atomic_write(path, lambda f, data=data: f.write(data))
    return list(paths.values())
