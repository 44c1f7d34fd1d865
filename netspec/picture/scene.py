"""What a layout produces and svg.py draws: plain shapes in picture coordinates.

A layout decides where things go; it never writes SVG. Each layer's shapes are
kept in a `Group` with the layers it stands for, its table rows (the tooltip)
and its spec line, so that the drawing can make every layer hoverable and
clickable, and tests can find every layer's box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Point = tuple[float, float]


@dataclass(frozen=True)
class Poly:
    """A closed polygon (a face of a 3-D box, a kernel)."""

    points: tuple[Point, ...]
    cls: str
    fill: str | None = None


@dataclass(frozen=True)
class Rect:
    """A rounded rectangle (a graph node)."""

    x: float
    y: float
    w: float
    h: float
    cls: str
    fill: str | None = None


@dataclass(frozen=True)
class Circle:
    """A merge: an add, a concat, a gate."""

    x: float
    y: float
    r: float
    cls: str
    fill: str | None = None


@dataclass(frozen=True)
class Path:
    """An open line through points; with `curve` its diagonal segments bend (as cubics);
    `arrow` ends it with a head."""

    points: tuple[Point, ...]
    cls: str = "edge"
    arrow: bool = True
    curve: bool = False


@dataclass(frozen=True)
class Text:
    """One line of text; `anchor` is start, middle or end."""

    x: float
    y: float
    text: str
    cls: str
    anchor: str = "middle"


Shape = Poly | Rect | Circle | Path | Text


@dataclass
class Group:
    """The shapes of one drawn unit: a layer, or layers collapsed or folded into it."""

    names: list[str]
    title: str
    line: int
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 of the unit's body
    shapes: list[Shape] = field(default_factory=list)


@dataclass
class Scene:
    """A whole picture: the layer groups, then shapes that belong to no layer."""

    title: str
    groups: list[Group] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)

    def bounds(self, margin: float = 12) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 around every shape (text by an estimate of its width)."""
        xs: list[float] = []
        ys: list[float] = []
        for s in [*self.shapes, *(s for g in self.groups for s in g.shapes)]:
            for x, y in _extent(s):
                xs.append(x)
                ys.append(y)
        if not xs:
            return 0, 0, 1, 1
        return min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate (on the wide side) of a text's width in a sans-serif font of `size` px."""
    return len(text) * size * (0.7 if bold else 0.62)


BOLD = {"shape", "node", "sign", "title"}
FONT = {"shape": 12, "name": 10, "small": 10, "node": 11, "op": 10, "edgelabel": 9, "shape-edge": 9,
        "sign": 13, "kernel": 10, "title": 14, "ref-name": 9}


def _extent(s: Shape) -> list[Point]:
    if isinstance(s, (Poly, Path)):
        return list(s.points)
    if isinstance(s, Rect):
        return [(s.x, s.y), (s.x + s.w, s.y + s.h)]
    if isinstance(s, Circle):
        return [(s.x - s.r, s.y - s.r), (s.x + s.r, s.y + s.r)]
    w = text_width(s.text, FONT.get(s.cls, 10), s.cls in BOLD)
    x0 = s.x - (w / 2 if s.anchor == "middle" else w if s.anchor == "end" else 0)
    return [(x0, s.y - FONT.get(s.cls, 10)), (x0 + w, s.y + 3)]
