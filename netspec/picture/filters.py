"""The learnt filters of one layer, as the course shows them: each filter enlarged, one
tile per output channel, on one colour scale with its legend (`netspec draw --filters`).

A filter over one input channel is one tile; over three (an RGB input) one tile in
colour, the input's channels as red, green and blue; over any other number, a row of
tiles, one per input channel it reads. Every tile of the picture uses the same scale,
from −m to +m where m is the largest |weight| of the layer, so that filters can be
compared with each other: white is 0, red positive, blue negative (in colour tiles,
grey is 0 and each channel grows brighter with its weight). Each tile is a square of
SVG per weight, so the picture is exact and can be read by a test or a script: every
filter is a `<g class="filter" data-filter="k">`, every tile a `<g class="tile">` with
its filter and input channel, and the root carries the scale (`data-scale`).

Which layers have filters is asked of the layer (`Layer.filter_bank`): a conv's
weight, or an fc layer's over an H×W×C input, each unit a filter as large as the
input (the fully connected network's "filters" the course compares with).
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING

from ..kinds import shape_str
from .tiles import (
    LEGEND_SPACE,
    diverging,
    document,
    legend,
    legend_width,
    rgb,
    text,
    value,
    width_of,
)
from .svg import _n as num

if TYPE_CHECKING:
    import numpy as np

    from ..kinds import Layer
    from ..network import Network

#: At most this many filters, and this many input channels per filter, are drawn.
MAX_FILTERS, MAX_INPUTS = 64, 16
TILE = 72           # a filter is enlarged to about this many pixels across
GAP = 14            # between tiles
LABEL = 30          # below a tile: its two lines of labels
ROW_LABEL = 92      # left of a row of input-channel tiles: the filter's labels
PAGE = 980          # the width the tiles wrap at
MARGIN = 16


def layer_weights(layer: Layer, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The layer's arrays by suffix (`weight`, `bias`), from the network's weights."""
    return {s: weights[layer.weight_key(s)] for s in layer.weight_shapes()}


def pick_layer(net: Network, weights: dict[str, np.ndarray], name: str | None) -> Layer:
    """The layer `--layer NAME` names, or the first whose weights are filters; a
    ValueError saying what to ask for otherwise."""
    from ..source.diagnostics import did_you_mean
    if name is None:
        for layer in net.layers:
            if layer.filter_bank(layer_weights(layer, weights)) is not None:
                return layer
        raise ValueError(f"{net.name} has no layer with filters to draw (a conv, or an fc "
                         f"layer reading a volume)")
    found = next((lay for lay in net.layers if lay.name == name), None)
    if found is None:
        hint = did_you_mean(name, [lay.name for lay in net.layers])
        raise ValueError(f"{net.name} has no layer `{name}`" + (f"; {hint}" if hint else ""))
    if found.filter_bank(layer_weights(found, weights)) is None:
        drawable = [lay.name for lay in net.layers
                    if lay.filter_bank(layer_weights(lay, weights)) is not None]
        raise ValueError(f"`{name}` ({found.text}) has no filters to draw; layers that do: "
                         f"{', '.join(drawable[:8]) or 'none'}")
    return found


def filters(net: Network, weights: dict[str, np.ndarray], name: str | None = None,
            source: str = "") -> str:
    """The filters of layer `name` (default: the first layer with filters) as an SVG
    document; `source` names where the weights came from."""
    import numpy as np
    layer = pick_layer(net, weights, name)
    arrays = layer_weights(layer, weights)
    bank = np.asarray(layer.filter_bank(arrays), dtype=np.float64)
    bias = arrays.get("bias")
    k, c, fh, fw = bank.shape
    limit = float(np.abs(bank).max()) if bank.size else 0.0
    colour = c == 3
    shown = min(k, MAX_FILTERS)
    inputs = 1 if c == 1 or colour else min(c, MAX_INPUTS)
    groups = int(layer.attrs().get("groups", 1) or 1)
    cell = max(2, min(24, ceil(TILE / max(fh, fw))))
    tw, th = fw * cell, fh * cell

    head = [f"{net.name}: the filters of `{layer.name}` ({layer.text}, line {layer.line})",
            f"{k} filters of {fh}×{fw}×{c}"
            + (" (each unit's weights over the whole input)" if "kernel" not in layer.attrs()
               else "")
            + (", in colour: input channels 0, 1, 2 as red, green, blue" if colour else "")
            + (f"; weights from {source}" if source else "")]
    if shown < k:
        head.append(f"the first {shown} of {k} filters")
    if 1 < c != 3 and inputs < c:
        head.append(f"the first {inputs} of the {c} input channels each filter reads")
    if groups > 1 and inputs > 1:
        head.append(f"in {groups} groups: each filter reads its group's {c} channels, "
                    f"`in +i` the i-th of them")
    caption = ("each of R, G, B: −m dark, 0 half, +m bright" if colour else "weight") + \
        f"; one scale for all {k} filters (m = {value(limit)})"
    body = [text(MARGIN, MARGIN + 14, head[0], "title")]
    y = MARGIN + 14
    for line in head[1:]:
        y += 17
        body.append(text(MARGIN, y, line, "sub"))
    y += 14
    body.append(legend(MARGIN + 20, y, "grey" if colour else "diverging",
                       -limit, limit, caption))   # room for the −m tick's label
    y += LEGEND_SPACE + 14
    width = max(width_of(head[0], "title"), *(width_of(s, "sub") for s in head[1:]),
                20 + legend_width(caption))

    def tile(x: float, top: float, f: int, ch: int | None) -> str:
        """Filter f's weights over input channel ch (None: all three, in colour)."""
        label = f"filter {f}, " + ("input channels 0–2 as red, green, blue" if ch is None
                                   else f"input channel {_channel(f, ch, k, c, groups)}")
        rows = [f'<g class="tile" data-filter="{f}" '
                f'data-input="{"rgb" if ch is None else _channel(f, ch, k, c, groups)}">'
                f"<title>{label}</title>"]
        for i in range(fh):
            for j in range(fw):
                fill = rgb(tuple(bank[f, :, i, j]), limit) if ch is None else \
                    diverging(float(bank[f, ch, i, j]), limit)
                rows.append(f'<rect x="{num(x + j * cell)}" y="{num(top + i * cell)}" '
                            f'width="{cell}" height="{cell}" fill="{fill}"/>')
        rows.append(f'<rect class="frame" x="{num(x)}" y="{num(top)}" width="{tw}" '
                    f'height="{th}"/></g>')
        return "".join(rows)

    def labels(f: int) -> list[str]:
        return [f"filter {f}"] + ([f"b = {value(float(bias[f]))}"] if bias is not None else [])

    if inputs == 1:   # a grid of tiles, one per filter, labelled below
        cols = max(1, min(shown, int((PAGE - 2 * MARGIN + GAP) // (tw + GAP))))
        for f in range(shown):
            r, q = divmod(f, cols)
            x, top = MARGIN + q * (tw + GAP), y + r * (th + LABEL + GAP)
            parts = [tile(x, top, f, None if colour else 0)]
            parts += [text(x + tw / 2, top + th + 13 + 12 * i, s, "label", "middle")
                      for i, s in enumerate(labels(f))]
            body.append(f'<g class="filter" data-filter="{f}">{"".join(parts)}</g>')
        rows = ceil(shown / cols)
        width = max(width, MARGIN + cols * (tw + GAP) - GAP)
        height = y + rows * (th + LABEL + GAP)
    else:             # a row per filter, a tile per input channel, channels named on top
        for ch in range(inputs):
            x = MARGIN + ROW_LABEL + ch * (tw + GAP)
            body.append(text(x + tw / 2, y + 10, f"in {_channel(0, ch, k, c, groups)}"
                             if groups == 1 else f"in +{ch}", "label", "middle"))
        y += 18
        for f in range(shown):
            top = y + f * (th + GAP)
            parts = [text(MARGIN, top + th / 2 - 2 + 12 * i, s, "label")
                     for i, s in enumerate(labels(f))]
            parts += [tile(MARGIN + ROW_LABEL + ch * (tw + GAP), top, f, ch)
                      for ch in range(inputs)]
            body.append(f'<g class="filter" data-filter="{f}">{"".join(parts)}</g>')
        width = max(width, MARGIN + ROW_LABEL + inputs * (tw + GAP) - GAP)
        height = y + shown * (th + GAP)
    return document(width + MARGIN, height + MARGIN, head[0], body, {
        "layer": layer.name, "shape": shape_str((fh, fw, c)), "filters": str(shown),
        "scale": repr(limit)})


def _channel(f: int, ch: int, k: int, c: int, groups: int) -> int:
    """The input channel that input `ch` of filter `f` reads: in a grouped conv, filter f
    belongs to group f // (k / groups), which reads channels from that group's first."""
    return (f // (k // groups)) * c + ch if groups > 1 else ch
