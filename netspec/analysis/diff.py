"""`netspec diff A B`: what changed, per layer or per group, between two networks.

Rows (layers, or groups with `depth`) are aligned as `diff` aligns lines: by
what they compute (kind, resolved attributes, output shape), so
that a layer inserted into a numbered sequence shows as one insertion rather than
every later layer as changed. Aligned rows that differ in anything are shown side
by side; rows that differ only in how they are written are marked as such.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from math import prod
from typing import TYPE_CHECKING, NamedTuple

from ..kinds import shape_str
from .groups import groups
from .memory import human_bytes

if TYPE_CHECKING:
    from ..kinds import Layer
    from ..network import Network


class _Row(NamedTuple):
    name: str
    text: str
    shape: str
    params: int
    macs: int
    values: int      # activation values of the row's layers, per sample
    meaning: tuple   # what the row's layers compute, however written (`_meaning`)


def _meaning(layer: Layer) -> tuple:
    """What a layer computes, whatever its spelling: kind, resolved attributes, weights,
    number of inputs and output. `conv 5x5 s1 x8` and `conv 5x5 x8` mean the same, and so do
    `conv 3x3 same x8` and `conv 3x3 p1 x8` where `same` pads 1 on each side (the
    written `padding` counts only where no resolved `pads` say what it does)."""
    attrs = layer.attrs()
    if "pads" in attrs:
        attrs = {k: v for k, v in attrs.items() if k != "padding"}
    return (layer.kind, layer.op, repr(sorted(attrs.items())),
            tuple(sorted(layer.weight_shapes().items())),
            len(layer.inputs), layer.output_shape)


def _rows(net: Network, depth: int | None) -> list[_Row]:
    rows = []
    for key, layers in groups(net, depth):
        one = layers[0] if len(layers) == 1 and layers[0].name == key else None
        text = one.text if one is not None else net.instances.get(key, f"{len(layers)} layers")
        rows.append(_Row(key, text, shape_str(layers[-1].output_shape),
                         sum(lay.params for lay in layers), sum(lay.macs for lay in layers),
                         sum(prod(lay.output_shape) for lay in layers),
                         tuple(_meaning(lay) for lay in layers)))
    return rows


def _change(a: object, b: object, number: bool = False) -> str:
    if a is None or b is None:
        value = a if a is not None else b
        return f"{value:,}" if number else str(value)
    if a == b:
        return f"{a:,}" if number else str(a)
    if number:
        return f"{a:,} → {b:,} ({b - a:+,})"   # type: ignore[operator]
    return f"{a} → {b}"


def diff(a: Network, b: Network, depth: int | None = None, dtype_bytes: int = 4) -> str:
    """A table of the rows that differ in name, shape, parameters, MACs or activation memory.

    Rows are aligned by what they compute; a row whose layers compute the same under the
    same name but are written differently (`conv 5x5 s1 x8` → `conv 5x5 x8`) is marked
    `=`, "same layer, written differently", rather than changed.
    """
    ra, rb = _rows(a, depth), _rows(b, depth)
    sig = lambda r: (tuple(m[:3] for m in r.meaning), r.shape)   # kind, op, attributes
    pairs: list[tuple[_Row | None, _Row | None]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, [sig(r) for r in ra], [sig(r) for r in rb],
                                              autojunk=False).get_opcodes():
        left, right = ra[i1:i2], rb[j1:j2]
        n = max(len(left), len(right))
        pairs += [(left[k] if k < len(left) else None, right[k] if k < len(right) else None)
                  for k in range(n)]
    header = ("layer", "", "as written", "output", "params", "MACs", "activation memory")
    rows, same, respelt = [header], 0, 0
    mem = lambda r: human_bytes(r.values * dtype_bytes) if r else None
    fields = _Row._fields[:-1]   # what is shown: all but the meaning
    for x, y in pairs:
        if x == y:
            same += 1
            continue
        pair = [(getattr(x, f) if x else None, getattr(y, f) if y else None) for f in fields]
        written = _change(*pair[1])
        if x is not None and y is not None and x._replace(text="") == y._replace(text=""):
            mark, respelt = "=", respelt + 1
            written += "  (same layer, written differently)"
        else:
            mark = "-" if y is None else "+" if x is None else "~"
        rows.append((_change(*pair[0]), mark, written, _change(*pair[2]),
                     _change(*pair[3], number=True), _change(*pair[4], number=True),
                     _change(mem(x), mem(y))))
    rows.append(("total", "", "", _change(shape_str(a.output_shape), shape_str(b.output_shape)),
                 _change(a.total_params, b.total_params, number=True),
                 _change(a.total_macs, b.total_macs, number=True),
                 _change(human_bytes(a.total_activations * dtype_bytes),
                         human_bytes(b.total_activations * dtype_bytes))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [(f"{a.name} ({a.filename}) → {b.name} ({b.filename}): "
              f"- only in the first, + only in the second, ~ changed, "
              f"= the same layer written differently")]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"{same} {'row' if same == 1 else 'rows'} the same"
                 + (f", {respelt} written differently" if respelt else ""))
    return "\n".join(lines)
