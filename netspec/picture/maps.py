"""One sample's feature maps, layer by layer, enlarged and labelled (`netspec run --maps`).

The page shows the input, then every layer whose output is a volume, in order: a
heading with the layer's name, its statement and its output shape, the layer's grey
scale (its smallest value black, its largest white, one scale for all its channels so
that they can be compared, as in the course's edge-detection example) with a legend,
and a tile per channel labelled with its number. Small maps are enlarged by whole
pixels, to about `TILE` pixels across, so that an 8×8 digit reads as well as a photo.
Each tile is a PNG inside the file (`<image>` with a data: URI): the page is one
self-contained SVG. Every layer is a `<g class="maps" data-layer="NAME">`, every
tile a `<g class="tile" data-channel="k">`.
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING

from ..kinds import shape_str
from .svg import _n as num
from .tiles import LEGEND_SPACE, document, legend, legend_width, png_uri, text, width_of

if TYPE_CHECKING:
    import numpy as np

    from ..kinds import Layer
    from ..network import Network

TILE = 96           # small maps are enlarged to about this many pixels across
MAX_CHANNELS = 64   # at most this many channels of a layer are drawn
GAP = 10
LABEL = 14          # below a tile: its channel's number
PAGE = 1000         # the width the tiles wrap at
MARGIN = 16


def map_layers(net: Network) -> list[Layer]:
    """The layers whose output is a volume, in order (aux heads are not computed)."""
    return [layer for layer in net.layers if len(layer.output_shape) == 3 and not layer.aux]


def feature_maps(net: Network, activations: dict[str, np.ndarray], sample: int = 0,
                 source: str = "") -> str:
    """The SVG page of one sample's maps. `activations` holds each layer's output by name,
    N×C×H×W (as NumpyModel.activations gives them); `sample` is the one drawn, and
    `source` says what it is (the page's subtitle: `sample 3 of x.npy`)."""
    import numpy as np

    from ..data.images import png_bytes
    title = f"{net.name}: the feature maps of one sample"
    sub = (source or f"sample {sample}") + "; each layer on its own grey scale, its " \
        "smallest value black and its largest white"
    body = [text(MARGIN, MARGIN + 14, title, "title"), text(MARGIN, MARGIN + 31, sub, "sub")]
    width = max(width_of(title, "title"), width_of(sub, "sub"))
    y = MARGIN + 31 + 22
    for layer in map_layers(net):
        maps = np.asarray(activations[layer.name][sample], dtype=np.float64)
        c, h, w = maps.shape
        shown = min(c, MAX_CHANNELS)
        lo, hi = (float(maps.min()), float(maps.max())) if maps.size else (0.0, 0.0)
        zoom = max(1, ceil(TILE / max(h, w)))
        tw, th = w * zoom, h * zoom
        cols = max(1, min(shown, int((PAGE - 2 * MARGIN + GAP) // (tw + GAP))))
        written = "" if not layer.inputs else f"{layer.text} · "   # the input: its shape
        head = f"{layer.name} · {written}{shape_str(layer.output_shape)}"
        note = f"  (the first {shown} of {c} channels)" if shown < c else ""
        caption = f"value of `{layer.name}` (one scale for its {c} channel{'s' * (c > 1)})"
        part = [f'<g class="maps" data-layer="{layer.name}" data-low="{lo!r}" '
                f'data-high="{hi!r}">', text(MARGIN, y + 13, head + note, "head"),
                legend(MARGIN + 20, y + 24, "grey", lo, hi, caption)]
        width = max(width, width_of(head + note, "head"), 20 + legend_width(caption))
        top = y + 24 + LEGEND_SPACE + 8
        scaled = (maps - lo) * (255.0 / (hi - lo)) if hi > lo else np.full(maps.shape, 127.5)
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        for ch in range(shown):
            r, q = divmod(ch, cols)
            x, ty = MARGIN + q * (tw + GAP), top + r * (th + LABEL + GAP)
            image = grey[ch].repeat(zoom, axis=0).repeat(zoom, axis=1)
            part.append(f'<g class="tile" data-channel="{ch}"><title>{layer.name}, channel '
                        f'{ch}</title><image x="{num(x)}" y="{num(ty)}" width="{tw}" '
                        f'height="{th}" href="{png_uri(png_bytes(image))}"/>'
                        f'<rect class="frame" x="{num(x)}" y="{num(ty)}" width="{tw}" '
                        f'height="{th}"/></g>')
            part.append(text(x + tw / 2, ty + th + 11, f"ch {ch}" if tw >= 40 else f"{ch}",
                             "label", "middle"))
        part.append("</g>")
        body += part
        width = max(width, MARGIN + cols * (tw + GAP) - GAP)
        y = top + ceil(shown / cols) * (th + LABEL + GAP) + 10
    return document(width + MARGIN, y + MARGIN, title, body)
