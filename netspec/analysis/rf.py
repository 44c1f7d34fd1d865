"""Receptive fields: how much of the input each layer's output pixel sees.

Per axis a field is (rf, jump, start): output pixel i of the layer reads input
pixels start + i·jump … start + i·jump + rf − 1 (the bounding box: a dilated
kernel reads only some of them). The input is (1, 1, 0). A layer whose output
pixel reads the window (span e, stride s, padding before p) of a field
(rf, j, st) of its input has

    rf' = rf + (e − 1)·j      jump' = j·s      start' = st − p·j

(e = d·(f − 1) + 1 for a dilated kernel). Where paths merge (a residual add, a
concatenation) the field is the union of the paths' fields: the largest when
their windows are centred alike; where they are not (the paths' first windows
have different centres, or different jumps), the layer's field is the bounding
box of the union and the merge gets an `rf-misaligned` warning. An input read
with stride 0 is broadcast (a 1×1 gate that every output pixel multiplies by):
it adds the same window to every output pixel's field.

Every layer kind says how its output pixel reads its input (`Layer.window`);
a kind that does not is refused, never guessed. A kind whose windows differ in
size (adaptive pooling that does not divide its input) says None, and no field
is reported from it on.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

from ..kinds import Layer

if TYPE_CHECKING:
    from fractions import Fraction   # imported where used: `check` starts faster without it

    from ..source.diagnostics import Reporter
    from ..network import Network

Axis = tuple[int, int, int, "tuple[int, int] | None"]   # (rf, jump, start, always)


class Field(namedtuple("Field", "rf jump start misaligned always out",
                       defaults=(False, (None, None), (1, 1)))):
    """The receptive field of a layer's output, per axis H and W.

    Output pixel i sees input pixels start + i·jump … start + i·jump + rf − 1 and,
    where a broadcast input was merged in, also the fixed window `always`.
    """

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]  # first input pixel of output pixel 0's window (may be < 0)
    misaligned: bool  # a merge of windows not centred alike, here or upstream
    always: tuple[tuple[int, int] | None, tuple[int, int] | None]
    out: tuple[int, int]  # the layer's output height and width

    def span(self, i: int, axis: int) -> tuple[int, int]:
        """First and last input pixel of output pixel i's window along `axis` (0 = H)."""
        a = self.start[axis] + i * self.jump[axis]
        lo, hi = a, a + self.rf[axis] - 1
        fixed = self.always[axis]
        return (lo, hi) if fixed is None else (min(lo, fixed[0]), max(hi, fixed[1]))

    @property
    def size(self) -> tuple[int, int]:
        """The largest field of any output pixel: `rf`, or more beside a broadcast window."""
        return tuple(max(b - a + 1 for a, b in (self.span(0, axis), self.span(n - 1, axis)))
                     for axis, n in enumerate(self.out))  # type: ignore[return-value]

    @property
    def centre(self) -> tuple[Fraction, Fraction]:
        """Centre of output pixel 0's window, in input pixels (a half for an even field)."""
        from fractions import Fraction
        return tuple(Fraction(a + b, 2) for a, b in (self.span(0, 0), self.span(0, 1)))  # type: ignore[return-value]


def _through(field: Axis, window: tuple[int, int, int]) -> Axis:
    rf, jump, start, always = field
    e, s, p = window
    return rf + (e - 1) * jump, jump * s, start - p * jump, always


def _hull(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _union(paths: list[Axis], out: int) -> tuple[Axis, bool]:
    """The bounding box of several paths' windows, and whether they are misaligned.

    A path with jump 0 is broadcast: every output pixel sees the same window of it,
    which joins the fixed window `always` and is never a misalignment.
    """
    always = None
    for rf, j, st, fixed in paths:
        always = _hull(always, fixed)
        if j == 0:
            always = _hull(always, (st, st + rf - 1))
    moving = [p for p in paths if p[1]]
    if not moving:   # every path broadcast: one window for all pixels
        assert always is not None
        return (always[1] - always[0] + 1, 0, always[0], None), False
    if len(moving) == 1:
        rf, j, st, _ = moving[0]
        return (rf, j, st, always), False
    jumps = {j for _, j, _, _ in moving}
    centres = {2 * st + rf - 1 for rf, _, st, _ in moving}
    if len(jumps) == 1:
        start = min(st for _, _, st, _ in moving)
        end = max(st + rf - 1 for rf, _, st, _ in moving)
        return (end - start + 1, jumps.pop(), start, always), len(centres) > 1
    # different jumps: the span changes along the axis; take its largest (at either end)
    spans = []
    for i in (0, max(out - 1, 0)):
        lo = min(st + i * j for _, j, st, _ in moving)
        hi = max(st + i * j + rf - 1 for rf, j, st, _ in moving)
        spans.append(hi - lo + 1)
    return (max(spans), max(jumps), min(st for _, _, st, _ in moving), always), True


def receptive_fields(net: Network, rep: Reporter | None = None) -> dict[str, Field]:
    """The field of every layer with a spatial (H×W×C) output, by layer name.

    With `rep`, a merge of misaligned windows gets an `rf-misaligned` warning.
    Raises NotImplementedError for a layer kind that does not declare its window.
    """
    fields: dict[str, Field] = {}
    for layer in net.layers:
        field = _field(layer, fields, rep)
        if field is not None:
            fields[layer.name] = field
    return fields


def _axis(f: Field, a: int) -> Axis:
    return f.rf[a], f.jump[a], f.start[a], f.always[a]


def _make(axes: list[Axis], misaligned: bool, out: tuple[int, int]) -> Field:
    return Field((axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]), (axes[0][2], axes[1][2]),
                 misaligned, (axes[0][3], axes[1][3]), out)


#: The windows of a pointwise layer of one input: the field passes through it unchanged.
_POINTWISE = [((1, 1, 0), (1, 1, 0))]


def _field(layer: Layer, fields: dict[str, Field], rep: Reporter | None) -> Field | None:
    if layer.output_shape is None or len(layer.output_shape) != 3:
        return None
    out = (layer.output_shape[0], layer.output_shape[1])
    if not layer.inputs:
        return Field((1, 1), (1, 1), (0, 0), out=out)
    if any(i.name not in fields for i in layer.inputs):
        return None   # after a vector: no spatial field (reported as a shape error)
    reads = layer.input_reads()
    if any(w is None for _, w in reads):
        return None   # windows of different sizes: no one field describes the layer
    if [w for _, w in reads] == _POINTWISE:
        field = fields[layer.inputs[0].name]
        if field.out == out and 0 not in field.jump:
            return field   # what the general case below would work out, without the work
    axes, bad = [], False
    upstream = any(fields[i.name].misaligned for i in layer.inputs)
    for a in (0, 1):
        paths = [_through(_axis(fields[i.name], a), w[a]) for i, w in reads]
        axis, wrong = _union(paths, out[a])
        axes.append(axis)
        bad |= wrong
    if bad and rep is not None:
        spans = []
        for i, w in reads:
            f = _make([_through(_axis(fields[i.name], a), w[a]) for a in (0, 1)], False, out)
            (r0, r1), (c0, c1) = f.span(0, 0), f.span(0, 1)
            spans.append(f"`{i.name}` reads rows {r0}…{r1}, columns {c0}…{c1}")
        rep.warning(layer.pos, "rf-misaligned",
                    f"`{layer.name}` merges windows that are not centred alike: for its first "
                    f"output pixel " + "; ".join(spans),
                    hint="give the paths the same total padding per stride (e.g. `same` on "
                         "both, or the same explicit padding)")
    return _make(axes, bad or upstream, out)


def rf_lines(layer: Layer, fields: dict[str, Field]) -> list[str]:
    """The receptive field's derivation for `netspec explain`, numbers filled in."""
    field = fields.get(layer.name)
    if field is None:
        return []
    if not layer.inputs:
        return ["rf = 1×1, jump 1 (the input itself)"]
    reads = layer.input_reads()
    lines = []
    for a, axis in enumerate(("H", "W")):
        s = reads[0][1][a][1]
        parts = []
        for i, window in reads:
            f = fields[i.name]
            rf, j, e = f.rf[a], f.jump[a], window[a][0]
            parts.append(f"{rf} + ({e}−1)·{j} = {rf + (e - 1) * j}")
        j = fields[layer.inputs[0].name].jump[a]
        union = "" if len(parts) == 1 else f", union of the paths = {field.size[a]}"
        lines.append(f"rf {axis} = {'; '.join(dict.fromkeys(parts))}{union}   "
                     f"jump = {j}·{s} = {field.jump[a]}   "
                     f"first centre = {_frac(field.centre[a])}")
    if lines[0].split(maxsplit=3)[3] == lines[1].split(maxsplit=3)[3]:
        return ["rf H, W" + lines[0][4:]]
    return lines


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"
