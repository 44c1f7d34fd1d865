"""The course picture: each layer's output volume as a 3-D box in a row.

A volume H×W×C is a box whose height grows with H, whose oblique depth grows with
W (both on a square-root scale, so 224 and 7 both read well) and whose thickness
along the row grows with C (on a log scale: 3 to 2048 channels). A layer with a
kernel draws it on the side of the volume it reads, with lines to the point of
the next volume it produces (as NN-SVG's AlexNet style does), labelled `5×5, s1, p0`;
the padding it adds is a border around that side (`same` is labelled `same (p1)`).
Vectors are thin bars, merges small circles (⊕ add, ‖ concat); in-place layers
(relu, bn, dropout) are folded into the box before them. Parallel branches are
stacked above the row: the first non-empty branch stays in the row, and the
others, an identity shortcut included, run around it as arrows into the merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import log2, sqrt
from typing import TYPE_CHECKING, Callable

from ..kinds import shape_str
from . import look
from .scene import BOLD, FONT, Circle, Group, Path, Poly, Scene, Text, text_width
from .structure import Parallel, Series, Unit, collapse, structure

if TYPE_CHECKING:
    from ..kinds import Layer
    from ..network import Network

GAP_ARROW = 24        # between two boxes joined by an arrow
GAP_MIN_KERNEL = 46   # between a volume and the box its kernel produces
FORK = 26             # inside a parallel item, before the branches and before the merge
BRANCH_GAP = 14       # between stacked branches
LINE = 13             # label line height
MERGE_R = 10
MIN_PAD = 2.5       # the narrowest padding border drawn, in pixels
ROW_WIDTH = 2600      # a longer network wraps onto more rows
ROW_GAP = 40


def side(n: int) -> float:
    """Height (H) or oblique depth (W) in pixels: a square-root scale."""
    return min(10 * sqrt(n) + 6, 200.0)   # capped: a 100,000-pixel side stays on screen


def thickness(c: int) -> float:
    """Thickness along the row for C channels: a log scale."""
    return 4 + 5 * log2(1 + c)


def bar(n: int) -> float:
    """Height of a vector's bar: a log scale, capped."""
    return min(160.0, 14 + 11 * log2(1 + n))


@dataclass
class _Geo:
    """A unit's measured geometry, relative to its slot's left and the row's line."""

    kind: str                 # box, merge
    h: float
    t: float
    dx: float
    dy: float
    gap: float                # space before the unit
    slot: float
    above: float
    below: float
    labels: list[tuple[str, str]] = field(default_factory=list)
    kernel: str | None = None
    pyramid: bool = False

    @property
    def body(self) -> float:
        return self.t + self.dx


def _fold(s: Series, last: Layer) -> Series:
    """A copy of `s` with each in-place layer folded into the unit before it.

    The network's `last` layer, its output, is always drawn on its own.
    """
    items: list = []
    for it in s.items:
        host = (items[-1] if isinstance(items[-1], Unit) else items[-1].merge) if items else None
        if isinstance(it, Unit) and not it.collapsed and host is not None and \
                look.role(it.layers[0]) == "inplace" and it.layers[0] is not last and \
                it.layers[0].inputs[0] is host.layer:   # not after `from a`
            host.folded.append(it.layers[0])
            continue
        if isinstance(it, Parallel):
            it = replace(it, branches=[_fold(b, last) for b in it.branches],
                         merge=replace(it.merge, folded=[]))
        else:
            it = replace(it, folded=[])
        items.append(it)
    return Series(items)


class _Layout:
    """Measures, then places, the items of one network (no state outside it)."""

    def __init__(self, title: str) -> None:
        self.geo: dict[int, _Geo] = {}
        self.size: dict[int, tuple[float, float, float]] = {}
        self.placed: dict[int, tuple[float, float, _Geo]] = {}   # unit → box left, line
        self.prev: dict[int, Unit] = {}   # unit → the unit before it in its series
        self.scene = Scene(title)

    # ---- measuring -----------------------------------------------------------------
    def unit(self, u: Unit, prev: Unit | None) -> _Geo:
        shape = u.layer.output_shape
        role = "merge" if not u.collapsed and look.role(u.layers[0]) == "merge" else "box"
        labels = [("shape", shape_str(shape)), ("name", u.key)]
        if u.folded:
            labels.append(("small", "+ " + ", ".join(f.op for f in u.folded)))
        if u.collapsed:
            call = u.call or f"{len(u.all_layers())} layers"
            cut = call.find("(")
            labels += ([("small", call[:cut]), ("small", call[cut:])] if len(call) > 16 and cut > 0
                       else [("small", call)])
        if role == "merge":
            g = _Geo("merge", 2 * MERGE_R, 2 * MERGE_R, 0, 0, 22, 0, MERGE_R, 0, labels)
        else:
            if len(shape) == 3:
                h, t, d = side(shape[0]), thickness(shape[2]), side(shape[1]) * 0.55
                dx, dy = d * 0.75, d * 0.6
            else:
                h, t, dx, dy = bar(shape[0]), 8.0, 6.0, 5.0
            if u.collapsed:
                dx, dy = dx + 4, dy + 4   # room for the stacked look
            g = _Geo("box", h, t, dx, dy, GAP_ARROW, 0, h / 2 + dy + 12 * u.collapsed, 0, labels)
            kernel = None if u.collapsed else look.kernel_label(u.layers[0])
            pg = self.geo.get(id(prev)) if prev is not None else None
            if kernel and pg is not None and pg.kind == "box" and \
                    len(prev.layer.output_shape) == 3:
                g.kernel, g.pyramid = kernel, True
                g.gap = max(GAP_MIN_KERNEL, text_width(kernel, FONT["kernel"]) + 12)
                g.above = max(g.above, pg.h / 2 + pg.dy + 22, g.h / 2 + g.dy + 22)
            elif kernel:
                labels.append(("kernel", kernel))
        width = max(text_width(t, FONT[c], c in BOLD) for c, t in labels)
        g.slot = max(g.body, width) + 6
        g.below = g.h / 2 + 6 + LINE * len(labels)
        self.geo[id(u)] = g
        return g

    def series(self, s: Series) -> tuple[float, float, float]:
        length, above, below = 0.0, 4.0, 4.0
        prev: Unit | None = None
        for i, it in enumerate(s.items):
            if isinstance(it, Unit):
                g = self.unit(it, prev)
                length += (g.gap if i else 0) + g.slot
                above, below = max(above, g.above), max(below, g.below)
                prev = it
            else:
                n, a, b = self.parallel(it)
                length += n
                above, below = max(above, a), max(below, b)
                prev = it.merge
        self.size[id(s)] = (length, above, below)
        return length, above, below

    @staticmethod
    def order(p: Parallel) -> list[Series]:
        """The first non-empty branch in the row, the others above it in order."""
        main = next((b for b in p.branches if b.items), p.branches[0])
        return [main, *(b for b in p.branches if b is not main)]

    def parallel(self, p: Parallel) -> tuple[float, float, float]:
        sizes = [self.series(b) for b in self.order(p)]
        m = self.unit(p.merge, None)
        offsets = [0.0]
        for k in range(1, len(sizes)):
            offsets.append(offsets[-1] - sizes[k - 1][1] - BRANCH_GAP - sizes[k][2])
        length = FORK + max(s[0] for s in sizes) + FORK + m.slot
        above = max(max(-o + s[1] for o, s in zip(offsets, sizes)), m.above)
        below = max(sizes[0][2], m.below)
        self.size[id(p)] = (length, above, below)
        return length, above, below

    # ---- placing --------------------------------------------------------------------
    def place_series(self, s: Series, x: float, y: float) -> tuple[float, float] | None:
        """Place `s` from x on line y; the x of its first and last bodies' edges."""
        first: float | None = None
        right: float | None = None
        for i, it in enumerate(s.items):
            if isinstance(it, Unit):
                g = self.geo[id(it)]
                if i:
                    x += g.gap
                left = x + (g.slot - g.body) / 2
                if right is not None and not g.pyramid:
                    self.scene.shapes.append(Path(((right, y), (left - 1, y))))
                self.draw_unit(it, left, y)
                first = left if first is None else first
                right = left + g.body
                x += g.slot
            else:
                start = right if right is not None else x
                end = self.place_parallel(it, x, y, start)
                first = x if first is None else first
                right = end
                x += self.size[id(it)][0]
        return None if first is None or right is None else (first, right)

    def place_parallel(self, p: Parallel, x: float, y: float, fork_x: float) -> float:
        branches = self.order(p)
        sizes = [self.size[id(b)] for b in branches]
        m = self.geo[id(p.merge)]
        mx = x + FORK + max(s[0] for s in sizes) + FORK
        mleft = mx + (m.slot - m.body) / 2
        cx = mleft + m.body / 2
        lane = fork_x + 8
        offset = 0.0
        for k, (b, size) in enumerate(zip(branches, sizes)):
            if k:
                offset -= sizes[k - 1][1] + BRANCH_GAP + size[2]
            yb = y + offset
            edges = self.place_series(b, x + FORK, yb)
            if k == 0 and edges:
                self.scene.shapes.append(Path(((fork_x, y), (edges[0] - 1, y))))
                self.scene.shapes.append(Path(((edges[1], y), (mleft - 1, y))))
            elif k == 0:
                self.scene.shapes.append(Path(((fork_x, y), (mleft - 1, y)), "edge skip"))
            elif edges:
                self.scene.shapes.append(Path(((fork_x, y), (lane, y), (lane, yb),
                                               (edges[0] - 1, yb))))
                self.scene.shapes.append(Path(((edges[1], yb), (cx, yb), (cx, y - MERGE_R - 1))))
            else:
                self.scene.shapes.append(Path(((fork_x, y), (lane, y), (lane, yb), (cx, yb),
                                               (cx, y - MERGE_R - 1)), "edge skip"))
        self.draw_unit(p.merge, mleft, y)
        return mleft + m.body

    # ---- drawing a unit ------------------------------------------------------------------
    def draw_unit(self, u: Unit, left: float, y: float) -> None:
        g = self.geo[id(u)]
        shapes: list = []
        if g.kind == "merge":
            cx = left + MERGE_R
            shapes += [Circle(cx, y, MERGE_R, "merge", "#ffffff"),
                       Text(cx, y + 4.5, look.sign(u.layers[0]), "sign")]
            box = (left, y - MERGE_R, left + 2 * MERGE_R, y + MERGE_R)
        else:
            fill = look.COLLAPSED if u.collapsed else look.colour(u.layers[0])
            if u.collapsed:
                shapes += _box(left + 4, y - 4, g.h, g.t, g.dx - 4, g.dy - 4, "#ffffff", "stack")
                shapes += _box(left, y, g.h, g.t, g.dx - 4, g.dy - 4, fill, "face")
                if any(len(lay.inputs) > 1 for lay in u.layers):   # a residual or concat inside
                    top = y - g.h / 2 - g.dy - 2
                    shapes.append(Path(((left + 2, top), (left + 2, top - 8),
                                        (left + g.body - 2, top - 8), (left + g.body - 2, top)),
                                       "edge skip"))
            else:
                shapes += _box(left, y, g.h, g.t, g.dx, g.dy, fill, "face")
            box = (left, y - g.h / 2 - g.dy, left + g.body, y + g.h / 2)
            if g.pyramid:
                shapes += self.pyramid(u, left, y)
        cx = left + g.body / 2
        ly = y + g.h / 2 + 6
        for cls, text in g.labels:
            ly += LINE
            shapes.append(Text(cx, ly - 2, text, cls))
        self.placed[id(u)] = (left, y, g)
        names = [lay.name for lay in u.all_layers()]
        self.scene.groups.append(Group(names, look.unit_title(u), u.layers[0].line, box, shapes))

    def pyramid(self, u: Unit, left: float, y: float) -> list:
        """The kernel on the side of the volume `u` reads, and lines to `u`'s box."""
        prev = self.placed[id(self.prev[id(u)])]
        pleft, py, pg = prev
        layer = u.layers[0]
        a = layer.attrs()
        h_in, w_in = self.prev[id(u)].layer.output_shape[:2]
        kh, kw = a["kernel"]
        kv = min(1.0, max(kh / h_in, 5 / pg.h))
        ku = min(1.0, max(kw / w_in, 0.15))
        u0, v0 = 0.5 - ku / 2, max(0.0, 0.45 - kv / 2)

        def on_side(uu: float, vv: float) -> tuple[float, float]:
            return (pleft + pg.t + uu * pg.dx, py - pg.h / 2 + vv * pg.h - uu * pg.dy)

        corners = (on_side(u0, v0), on_side(u0 + ku, v0), on_side(u0 + ku, v0 + kv),
                   on_side(u0, v0 + kv))
        g = self.geo[id(u)]
        apex = (left + 1, y - g.h / 2 + 0.45 * g.h)
        cls = layer.draw_kernel
        shapes: list = _padding_border(a.get("pads"), (h_in, w_in), (pg.h, pg.dx), on_side)
        shapes.append(Poly(corners, cls, look.colour(layer)))
        shapes += [Poly((corners[i], corners[(i + 1) % 4], apex), "pyramid") for i in range(4)]
        top = y - max(pg.h / 2 + pg.dy, g.h / 2 + g.dy) - 10
        shapes.append(Text((pleft + pg.body + left) / 2, top, g.kernel or "", "kernel"))
        return shapes


def _padding_border(pads: list[int] | None, size: tuple[int, int], pixels: tuple[float, float],
                    on_side: Callable[[float, float], tuple[float, float]]) -> list:
    """The padding a window adds, as a border around the H×W face of the volume it reads:
    a strip per padded side, as wide as its cells (at least `MIN_PAD` pixels), and a
    dashed outline of the padded input. `pads` is [top, left, bottom, right]; `size` the
    input's H and W; `pixels` the face's height and oblique depth; `on_side` maps face
    fractions (along W, along H) to the picture."""
    if not pads or not any(pads):
        return []
    (h, w), (ph, pw) = size, pixels
    top, left, bottom, right = (
        0.0 if not n else max(n / cells, MIN_PAD / max(px, 1.0))
        for n, cells, px in zip(pads, (h, w, h, w), (ph, pw, ph, pw)))
    u0, u1, v0, v1 = -left, 1 + right, -top, 1 + bottom

    def quad(ua: float, ub: float, va: float, vb: float) -> Poly:
        return Poly((on_side(ua, va), on_side(ub, va), on_side(ub, vb), on_side(ua, vb)),
                    "padding")
    strips = [quad(u0, u1, v0, 0.0) if top else None, quad(u0, u1, 1.0, v1) if bottom else None,
              quad(u0, 0.0, 0.0, 1.0) if left else None, quad(1.0, u1, 0.0, 1.0) if right else None]
    outline = quad(u0, u1, v0, v1)
    return [s for s in strips if s is not None] + [Poly(outline.points, "padding-edge")]


def _box(x: float, y: float, h: float, t: float, dx: float, dy: float, fill: str,
         cls: str) -> list:
    """A box's three visible faces: front (H×C), top (W×C) and side (H×W)."""
    top, bot = y - h / 2, y + h / 2
    return [Poly(((x, top), (x + t, top), (x + t, bot), (x, bot)), cls, fill),
            Poly(((x, top), (x + dx, top - dy), (x + t + dx, top - dy), (x + t, top)), cls,
                 look.shade(fill, 1.35)),
            Poly(((x + t, top), (x + t + dx, top - dy), (x + t + dx, bot - dy), (x + t, bot)),
                 cls, look.shade(fill, 0.82))]


def _link_prev(s: Series, prev: dict[int, Unit]) -> None:
    """Remember, for each unit, the unit before it in its series (whose volume it reads)."""
    before: Unit | None = None
    for it in s.items:
        if isinstance(it, Unit):
            if before is not None:
                prev[id(it)] = before
            before = it
        else:
            for b in it.branches:
                _link_prev(b, prev)
            before = it.merge


def _rows(tree: Series, title: str) -> list[Series]:
    """The top-level items cut into rows of at most ROW_WIDTH, read like lines of text."""
    trial = _Layout(title)
    _link_prev(tree, trial.prev)
    trial.series(tree)
    rows: list[list] = [[]]
    width = 0.0
    for it in tree.items:
        n = trial.size[id(it)][0] if isinstance(it, Parallel) else \
            trial.geo[id(it)].gap + trial.geo[id(it)].slot
        if rows[-1] and width + n > ROW_WIDTH:
            rows.append([])
            width = 0.0
        rows[-1].append(it)
        width += n
    return [Series(items) for items in rows]


def volumes(net: Network, depth: int | None = None) -> Scene:
    """The volume picture of `net`; `depth` collapses name groups into one box each."""
    tree = structure(net)
    if depth is not None:
        tree = collapse(tree, depth, net.instances)
    tree = _fold(tree, net.layers[-1])
    title = f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}"
    lay = _Layout(title)
    rows = _rows(tree, title)
    for row in rows:
        _link_prev(row, lay.prev)
        lay.series(row)
    y = 0.0
    end: tuple[float, float] | None = None
    for i, row in enumerate(rows):
        _, above, below = lay.size[id(row)]
        y += above
        first, last = lay.place_series(row, 0.0, y) or (0.0, 0.0)
        if end is not None:   # from the end of the row above, back to the start of this one
            turn = y - above - ROW_GAP / 2
            lay.scene.shapes.append(Path(((end[0], end[1]), (end[0] + 14, end[1]),
                                          (end[0] + 14, turn), (first - 14, turn),
                                          (first - 14, y), (first - 1, y))))
        end = (last, y)
        y += below + ROW_GAP
    x0, y0, _, _ = lay.scene.bounds(0)
    lay.scene.shapes.insert(0, Text(x0, y0 - 10, lay.scene.title, "title", "start"))
    return lay.scene
