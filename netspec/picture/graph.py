"""The graph picture: a node per layer, top to bottom, the output shape on each edge.

The layout follows the network's nesting (structure.py) instead of a general
graph-layout algorithm: a series stacks its items downwards on one axis, a
parallel item puts its branches side by side, centred under the layer they fork
from, and joins them in the merge below. For a series–parallel graph this never
crosses edges, keeps every branch in its own column and is linear in the number
of layers. A node that reads a value other than the one above it (a join of named
values, `concat(a, b)`, or what follows `from a`) gets that edge as a reference:
from the right of the node that made the value, down a lane right of every node
in between, into the right of its reader, dashed and labelled with the value's
name. Each node shows the layer's name and its resolved options (kernel, stride,
padding, filters); `--depth` groups are one node each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..kinds import shape_str
from . import look
from .scene import FONT, Circle, Group, Path, Rect, Scene, Text, text_width
from .structure import Parallel, Series, Unit, collapse, structure

if TYPE_CHECKING:
    from ..kinds import Layer
    from ..network import Network

#: Where a drawn item ends: its bottom point, its output's shape, and that value.
_End = tuple[float, float, str, "Layer"]

GAP = 30          # between a node and the next: the edge and its shape
FORK = 46         # before branches (fan-out edges) and before the merge
COLUMN_GAP = 22   # between branches side by side
NODE_H = 34
MERGE_R = 11
STUB = 15         # the straight start of edges fanning out, beside the shape label
LANE = 12         # half the width of an identity branch
REF_GAP = 18      # between the nodes a reference passes and its lane
REF_STEP = 9      # between the lanes of references that pass the same nodes


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
        self.at: dict[int, tuple[float, float, float, float]] = {}   # layer → its node: x,
        #: top, width, height; each reference: the value, its reader's node, the name read
        self.refs: list[tuple[Layer, tuple[float, float, float, float], str | None]] = []

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
    def place_series(self, s: Series, x: float, y: float, top: _End | None = None) -> _End:
        """Place `s` from y down on axis x; `top` is the point, shape and value flowing in.

        Returns the bottom point of its last item, that item's output shape and value.
        """
        end = top
        for i, it in enumerate(s.items):
            if isinstance(it, Unit):
                if i:
                    y += GAP
                for value in it.inputs:   # below a value it reads from another branch
                    if (end is None or value is not end[3]) and id(value) in self.at:
                        _, sy, _, sh = self.at[id(value)]
                        y = max(y, sy + sh + GAP)
                names = it.read_names()
                for value in it.inputs:
                    if end is not None and value is end[3]:
                        self.edge(end, (x, y))
                    else:   # drawn once every node is placed
                        n = self.node[id(it)]
                        self.refs.append((value, (x, y, n.w, n.h), names.get(id(value))))
                end = self.draw_unit(it, x, y)
                y += self.node[id(it)].h
            else:
                if it.fork is not None and (end is None or it.fork is not end[3]):
                    self.refs.append((it.fork, (x, y, 0.0, 0.0), it.fork_name))   # another value
                    end = (x, y, shape_str(it.fork.output_shape), it.fork)
                end = self.place_parallel(it, x, y, end)
                y = max(y + self.size[id(it)][0], end[1])   # longer where a branch waited
        assert end is not None
        return end

    def references(self) -> None:
        """Each reference, from the right of its value's node to its reader: into the
        reader's left down a lane just left of it, where the reader stands right of the
        value and nothing is in the way (from one branch into the next), else down a lane
        right of every node between them, into the reader's right (or, for a merge's
        circle, whose name is on its right, or a fork, from above)."""
        boxes = [g.box for g in self.scene.groups]
        lanes: list[tuple[float, float, float]] = []   # top, bottom, x of lanes drawn
        named: set[tuple[int, str]] = set()   # a value's name is written once
        for value, (tx, ty, tw, th), name in self.refs:
            sx, sy, sw, sh = self.at[id(value)]
            y0, y1 = sy + sh / 2, ty + th / 2
            between = [b for b in boxes if b[3] >= y0 and b[1] <= y1]
            left = tx - tw / 2 - REF_GAP / 2
            if tw and sx + sw / 2 + REF_GAP / 2 < left and \
                    not any(b[0] <= left <= b[2] for b in between):
                points = ((sx + sw / 2, y0), (left, y0), (left, y1), (tx - tw / 2 - 1, y1))
                lane = left
            else:
                lane = max([b[2] for b in between] + [sx + sw / 2, tx + tw / 2]) + REF_GAP
                while any(top <= y1 and y0 <= bottom and abs(x - lane) < REF_STEP
                          for top, bottom, x in lanes):
                    lane += REF_STEP
                lanes.append((y0, y1, lane))
                if tw and th == NODE_H:
                    points = ((sx + sw / 2, y0), (lane, y0), (lane, y1), (tx + tw / 2 + 1, y1))
                else:
                    points = ((sx + sw / 2, y0), (lane, y0), (lane, ty - STUB), (tx, ty - 1))
            self.scene.shapes.append(Path(points, "edge ref", curve=True))
            if name and (id(value), name) not in named:
                named.add((id(value), name))
                self.scene.shapes.append(Text(lane + 3, y0 + 11, name, "ref-name", "start"))

    def edge(self, start: _End, stop: tuple[float, float]) -> None:
        x0, y0 = start[:2]
        x1, y1 = stop
        points = ((x0, y0), (x1, y1 - 1)) if x0 == x1 else ((x0, y0), (x0, y0 + STUB), (x1, y1 - 1))
        self.scene.shapes.append(Path(points, curve=True))

    def place_parallel(self, p: Parallel, x: float, y: float, top: _End | None) -> _End:
        sizes = [self.size[id(b)] for b in p.branches]
        width = sum(s[1] + s[2] for s in sizes) + COLUMN_GAP * (len(sizes) - 1)
        inner = max(s[0] for s in sizes)
        merge_y = y + FORK + inner + FORK
        bx = x - width / 2
        ends: list[tuple[_End, float]] = []
        for b, (_, left, right) in zip(p.branches, sizes):
            cx = bx + left
            bx += left + right + COLUMN_GAP
            if not b.items:   # the input itself: a lane from the fork to the merge
                if top is not None:
                    ends.append((top, cx))
                continue
            end = self.place_series(b, cx, y + FORK, top)
            ends.append((end, cx))
            merge_y = max(merge_y, end[1] + FORK)   # a branch that waited for another's value
        for (ex, ey, *_), cx in ends:
            mid = merge_y - FORK / 2
            if top is not None and (ex, ey) == top[:2]:   # an identity branch
                points = ((ex, ey), (ex, ey + STUB), (cx, y + FORK), (cx, mid), (x, merge_y - 1))
                self.scene.shapes.append(Path(points, "edge skip", curve=True))
            else:
                self.scene.shapes.append(Path(((ex, ey), (cx, mid), (x, merge_y - 1)),
                                              curve=True))
        return self.draw_unit(p.merge, x, merge_y)

    # ---- drawing a node ---------------------------------------------------------------
    def draw_unit(self, u: Unit, x: float, y: float) -> _End:
        n = self.node[id(u)]
        for layer in u.all_layers():
            self.at[id(layer)] = (x, y, n.w, n.h)
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
        return x, y + n.h, shape_str(u.layer.output_shape), u.layer


def graph(net: Network, depth: int | None = None) -> Scene:
    """The graph picture of `net`; `depth` collapses name groups into one node each."""
    tree = structure(net)
    if depth is not None:
        tree = collapse(tree, depth, net.instances)
    lay = _Layout(f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}")
    lay.series(tree)
    lay.place_series(tree, 0.0, 0.0)
    lay.references()
    x0, y0, _, _ = lay.scene.bounds(0)
    lay.scene.shapes.insert(0, Text(x0, y0 - 10, lay.scene.title, "title", "start"))
    return lay.scene
