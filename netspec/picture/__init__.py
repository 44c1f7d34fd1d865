"""Pictures of a network: the course's volume diagram, a layered graph, an HTML report.

    structure  the network's nesting: series of parallel branches, `--depth` groups
    look       what a layer looks like, asked of the layer (op, attrs, shapes)
    volumes    layout of the volume picture (3-D boxes in a row)
    graph      layout of the top-down graph (a node per layer, shapes on edges)
    scene      the shapes a layout produces
    svg        drawing a scene as a self-contained SVG
    html       the report page: table, picture, warnings, source

Only the standard library is used, so `netspec draw` loads no NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..network import Network

STYLES = ("volumes", "graph")


def default_style(net: Network, depth: int | None = None) -> str:
    """`volumes` for a plain sequence of boxes, `graph` where drawn paths fork and merge
    or a layer reads a value other than the one before it (a block collapsed by `depth`
    hides its own branches)."""
    from .structure import Parallel, collapse, has_references, structure
    tree = structure(net)
    if depth is not None:
        tree = collapse(tree, depth, net.instances)
    return "graph" if any(isinstance(it, Parallel) for it in tree.items) or \
        has_references(tree) else "volumes"


def draw(net: Network, style: str | None = None, depth: int | None = None) -> str:
    """The network as an SVG document (a string): `style` volumes or graph (default:
    by shape of the network), `depth` folding layers whose names share that many
    parts into one box, as `check --depth` does."""
    from .svg import render
    style = style or default_style(net, depth)
    if style == "volumes":
        from .volumes import volumes
        return render(volumes(net, depth))
    if style == "graph":
        from .graph import graph
        return render(graph(net, depth))
    raise ValueError(f"unknown style {style!r}: use one of {', '.join(STYLES)}")
