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
box of the union and the merge gets an `rf-misaligned` warning.

Every layer kind says how its output pixel reads its input (`Layer.window`);
a kind that does not is refused, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ..layers import Layer

if TYPE_CHECKING:
    from ..errors import Reporter
    from ..network import Network

Axis = tuple[int, int, int]   # (rf, jump, start)


@dataclass(frozen=True)
class Field:
    """The receptive field of a layer's output, per axis H and W."""

    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]        # first input pixel of output pixel 0's window (may be < 0)
    misaligned: bool = False      # a merge of windows not centred alike, here or upstream

    @property
    def centre(self) -> tuple[Fraction, Fraction]:
        """Centre of output pixel 0's window, in input pixels (a half for an even field)."""
        return tuple(Fraction(2 * s + r - 1, 2) for s, r in zip(self.start, self.rf))  # type: ignore[return-value]

    def span(self, i: int, axis: int) -> tuple[int, int]:
        """First and last input pixel of output pixel i's window along `axis` (0 = H)."""
        a = self.start[axis] + i * self.jump[axis]
        return a, a + self.rf[axis] - 1


def _through(field: Axis, window: tuple[int, int, int]) -> Axis:
    rf, jump, start = field
    e, s, p = window
    return rf + (e - 1) * jump, jump * s, start - p * jump


def _union(paths: list[Axis], out: int) -> tuple[Axis, bool]:
    """The bounding box of several paths' windows, and whether they are misaligned."""
    if len(paths) == 1:
        return paths[0], False
    jumps = {j for _, j, _ in paths}
    centres = {2 * st + rf - 1 for rf, _, st in paths}
    if len(jumps) == 1:
        start = min(st for _, _, st in paths)
        end = max(st + rf - 1 for rf, _, st in paths)
        return (end - start + 1, jumps.pop(), start), len(centres) > 1
    # different jumps: the span changes along the axis; take its largest (at either end)
    spans = []
    for i in (0, max(out - 1, 0)):
        lo = min(st + i * j for _, j, st in paths)
        hi = max(st + i * j + rf - 1 for rf, j, st in paths)
        spans.append(hi - lo + 1)
    return (max(spans), max(jumps), min(st for _, _, st in paths)), True


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


def _field(layer: Layer, fields: dict[str, Field], rep: Reporter | None) -> Field | None:
    if layer.output_shape is None or len(layer.output_shape) != 3:
        return None
    if not layer.inputs:
        return Field((1, 1), (1, 1), (0, 0))
    if any(i.name not in fields for i in layer.inputs):
        return None   # after a vector: no spatial field (reported as a shape error)
    window = layer.window()
    axes, bad, upstream = [], False, False
    for a in (0, 1):
        paths = []
        for i in layer.inputs:
            f = fields[i.name]
            paths.append(_through((f.rf[a], f.jump[a], f.start[a]), window[a]))
            upstream |= f.misaligned
        axis, wrong = _union(paths, layer.output_shape[a])
        axes.append(axis)
        bad |= wrong
    field = Field((axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]), (axes[0][2], axes[1][2]),
                  bad or upstream)
    if bad and rep is not None:
        spans = []
        for i in layer.inputs:
            f = _through_all(fields[i.name], window)
            spans.append(f"`{i.name}` reads rows {f.span(0, 0)[0]}…{f.span(0, 0)[1]}, "
                         f"columns {f.span(0, 1)[0]}…{f.span(0, 1)[1]}")
        rep.warning(layer.pos, "rf-misaligned",
                    f"`{layer.name}` merges windows that are not centred alike: for its first "
                    f"output pixel " + "; ".join(spans),
                    hint="give the paths the same total padding per stride (e.g. `same` on "
                         "both, or the same explicit padding)")
    return field


def _through_all(field: Field, window: tuple[tuple[int, int, int], ...]) -> Field:
    axes = [_through((field.rf[a], field.jump[a], field.start[a]), window[a]) for a in (0, 1)]
    return Field((axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]), (axes[0][2], axes[1][2]))


def rf_lines(layer: Layer, fields: dict[str, Field]) -> list[str]:
    """The receptive field's derivation for `netspec explain`, numbers filled in."""
    field = fields.get(layer.name)
    if field is None:
        return []
    if not layer.inputs:
        return ["rf = 1×1, jump 1 (the input itself)"]
    window = layer.window()
    lines = []
    for a, axis in enumerate(("H", "W")):
        e, s, _ = window[a]
        parts = []
        for i in layer.inputs:
            f = fields[i.name]
            rf, j = f.rf[a], f.jump[a]
            parts.append(f"{rf} + ({e}−1)·{j} = {rf + (e - 1) * j}")
        j = fields[layer.inputs[0].name].jump[a]
        union = "" if len(parts) == 1 else f", union of the paths = {field.rf[a]}"
        lines.append(f"rf {axis} = {'; '.join(dict.fromkeys(parts))}{union}   "
                     f"jump = {j}·{s} = {field.jump[a]}   "
                     f"first centre = {_frac(field.centre[a])}")
    if lines[0].split(maxsplit=3)[3] == lines[1].split(maxsplit=3)[3]:
        return ["rf H, W" + lines[0][4:]]
    return lines


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"
