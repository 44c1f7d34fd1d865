"""The graph picture: a node per layer, top to bottom, the output shape on each edge.

The layout follows the network's nesting (structure.py) instead of a general
graph-layout algorithm: a series stacks its items downwards on one axis, a
parallel item puts its branches side by side, centred under the layer they fork
from, and joins them in the merge below. netspec's graphs are series–parallel,
so this never crosses edges, keeps every branch in its own column and is linear
in the number of layers. Each node shows the layer's name and its resolved
options (kernel, stride, padding, filters); `--depth` groups are one node each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..kinds import shape_str
from . import look
from .scene import FONT, Circle, Group, Path, Rect, Scene, Text, text_width
from .structure import Parallel, Series, Unit, collapse, structure

if TYPE_CHECKING:
    from ..network import Network

GAP = 30          # between a node and the next: the edge and its shape
FORK = 46         # before branches (fan-out edges) and before the merge
COLUMN_GAP = 22   # between branches side by side
NODE_H = 34
MERGE_R = 11
STUB = 15         # the straight start of edges fanning out, beside the shape label
LANE = 12         # half the width of an identity branch


@dataclass
class _Node:
    """A unit's node: its size and its two lines of text."""

    w: float
    h: float
    lines: tuple[str, str]
    merge: bool
    label: float    # width of its output's shape label


def _node(u: Unit) -> _Node:
    shape = shape_str(u.layer.output_shape)
    label = text_width(shape, FONT["edgelabel"]) + 6
    if not u.collapsed and look.role(u.layers[0]) == "merge":
        return _Node(2 * MERGE_R, 2 * MERGE_R, (u.key, ""), True, label)
    op = (u.call or f"{len(u.layers)} layers") if u.collapsed else look.spec_label(u.layers[0])
    w = max(text_width(u.key, FONT["node"], bold=True), text_width(op, FONT["op"])) + 16
    return _Node(max(w, 64), NODE_H, (u.key, op), False, label)


class _Layout:
    """Measures, then places, the items of one network (no state outside it)."""

    def __init__(self, title: str) -> None:
        self.node: dict[int, _Node] = {}
        self.size: dict[int, tuple[float, float, float]] = {}   # length, left, right
        self.scene = Scene(title)

    # ---- measuring: (length down the axis, extent left of it, extent right of it) ----
    def unit(self, u: Unit) -> tuple[float, float, float]:
        n = self.node[id(u)] = _node(u)
        right = n.w / 2 + (text_width(u.key, FONT["name"]) + 8 if n.merge else 0)
        return n.h, n.w / 2, max(right, 6 + n.label)

    def series(self, s: Series) -> tuple[float, float, float]:
        length, left, right = 0.0, LANE, LANE
        for i, it in enumerate(s.items):
            n, a, b = self.unit(it) if isinstance(it, Unit) else self.parallel(it)
            length += (GAP if i and isinstance(it, Unit) else 0) + n
            left, right = max(left, a), max(right, b)
        self.size[id(s)] = (length, left, right)
        return length, left, right

    def parallel(self, p: Parallel) -> tuple[float, float, float]:
        sizes = [self.series(b) for b in p.branches]
        n, a, b = self.unit(p.merge)
        width = sum(s[1] + s[2] for s in sizes) + COLUMN_GAP * (len(sizes) - 1)
        length = FORK + max(s[0] for s in sizes) + FORK + n
        self.size[id(p)] = (length, max(width / 2, a), max(width / 2, b))
        return self.size[id(p)]

    # ---- placing ----------------------------------------------------------------------
    def place_series(self, s: Series, x: float, y: float,
                     top: tuple[float, float, str] | None = None) -> tuple[float, float, str]:
        """Place `s` from y down on axis x; `top` is the point and shape flowing in.

        Returns the bottom point of its last item and that item's output shape.
        """
        end = top
        for i, it in enumerate(s.items):
            if isinstance(it, Unit):
                if i:
                    y += GAP
                if end is not None:
                    self.edge(end, (x, y))
                end = self.draw_unit(it, x, y)
                y += self.node[id(it)].h
            else:
                end = self.place_parallel(it, x, y, end)
                y += self.size[id(it)][0]
        assert end is not None
        return end

    def edge(self, start: tuple[float, float, str], stop: tuple[float, float]) -> None:
        x0, y0, _ = start
        x1, y1 = stop
        points = ((x0, y0), (x1, y1 - 1)) if x0 == x1 else ((x0, y0), (x0, y0 + STUB), (x1, y1 - 1))
        self.scene.shapes.append(Path(points, curve=True))

    def place_parallel(self, p: Parallel, x: float, y: float,
                       top: tuple[float, float, str] | None) -> tuple[float, float, str]:
        sizes = [self.size[id(b)] for b in p.branches]
        width = sum(s[1] + s[2] for s in sizes) + COLUMN_GAP * (len(sizes) - 1)
        inner = max(s[0] for s in sizes)
        merge_y = y + FORK + inner + FORK
        bx = x - width / 2
        ends = []
        for b, (_, left, right) in zip(p.branches, sizes):
            cx = bx + left
            bx += left + right + COLUMN_GAP
            if not b.items:   # the input itself: a lane from the fork to the merge
                if top is not None:
                    ends.append((top, cx))
                continue
            end = self.place_series(b, cx, y + FORK, top)
            ends.append((end, cx))
        for (ex, ey, _), cx in ends:
            mid = merge_y - FORK / 2
            if top is not None and (ex, ey) == top[:2]:   # an identity branch
                points = ((ex, ey), (ex, ey + STUB), (cx, y + FORK), (cx, mid), (x, merge_y - 1))
                self.scene.shapes.append(Path(points, "edge skip", curve=True))
            else:
                self.scene.shapes.append(Path(((ex, ey), (cx, mid), (x, merge_y - 1)),
                                              curve=True))
        return self.draw_unit(p.merge, x, merge_y)

    # ---- drawing a node ---------------------------------------------------------------
    def draw_unit(self, u: Unit, x: float, y: float) -> tuple[float, float, str]:
        n = self.node[id(u)]
        shapes: list = []
        if n.merge:
            shapes += [Circle(x, y + MERGE_R, MERGE_R, "merge", "#ffffff"),
                       Text(x, y + MERGE_R + 4.5, look.sign(u.layers[0]), "sign"),
                       Text(x + MERGE_R + 5, y + MERGE_R + 3.5, u.key, "name", "start")]
        else:
            left = x - n.w / 2
            if u.collapsed:
                shapes.append(Rect(left + 3, y + 3, n.w, n.h, "stack", "#ffffff"))
            fill = look.COLLAPSED if u.collapsed else look.colour(u.layers[0])
            shapes += [Rect(left, y, n.w, n.h, "node-box collapsed" if u.collapsed
                            else "node-box", fill),
                       Text(x, y + 14, n.lines[0], "node"),
                       Text(x, y + 27, n.lines[1], "op")]
        # the output's shape, on the edge (or edges) leaving the node
        shapes.append(Text(x + 5, y + n.h + 12, shape_str(u.layer.output_shape), "shape-edge",
                           "start"))
        names = [lay.name for lay in u.all_layers()]
        box = (x - n.w / 2, y, x + n.w / 2, y + n.h)
        self.scene.groups.append(Group(names, look.unit_title(u), u.layers[0].line, box, shapes))
        return x, y + n.h, shape_str(u.layer.output_shape)


def graph(net: Network, depth: int | None = None) -> Scene:
    """The graph picture of `net`; `depth` collapses name groups into one node each."""
    tree = structure(net)
    if depth is not None:
        tree = collapse(tree, depth, net.instances)
    lay = _Layout(f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}")
    lay.series(tree)
    lay.place_series(tree, 0.0, 0.0)
    x0, y0, _, _ = lay.scene.bounds(0)
    lay.scene.shapes.insert(0, Text(x0, y0 - 10, lay.scene.title, "title", "start"))
    return lay.scene
