"""Step 1 of writing a spec, for a graph that is not series–parallel: named values.

Where a join reads values that do not all branch from one value (Res2Net, DLA,
VoVNet), the layers are written one after another in the order the graph gives
them, with `from a` where a layer reads another value than the one before it and
`concat(a, b)` (a `Jn`) for each join; every part that is series–parallel after all
stays a residual, gate or merged branches: at each value with several readers, the
first join (in order) whose paths from that value are closed — nothing on them is
read from outside, nothing on them reads outside — becomes the item the existing
series–parallel writer (structure.Graph.chain) makes of it, when it can.
"""

from __future__ import annotations

import heapq

from ..onnx.reader import Imported, OnnxImportError
from .structure import MERGES, Cat, Fr, Graph, Item, Jn, Res, series_parallel

#: The joins tried, in order, as the end of a series–parallel part at one value.
MAX_CANDIDATES = 64


def structure(layers: list[Imported], output: str, input_shape: tuple[int, ...]) -> list[Item]:
    """The layers as a series–parallel tree (structure.py) where the graph is one, else
    with named values (`linear`)."""
    graph, items = series_parallel(layers, output, input_shape)
    return items if items is not None and in_order(items, {"input"}) else linear(graph)


def in_order(items: list[Item], computed: set[str]) -> bool:
    """Whether every join of named values and `from` reads values built before it, as the
    builder builds the items (a residual's body, then its shortcut; branches in order);
    `computed` (the values built before) grows by the items' values."""
    for item in items:
        if isinstance(item, Imported):
            computed.add(item.output)
        elif isinstance(item, Jn):
            if any(i not in computed for i in item.merge.inputs):
                return False
            computed.add(item.merge.output)
        elif isinstance(item, Fr):
            if item.value not in computed:
                return False
        else:
            inner = [item.body] + ([item.shortcut] if getattr(item, "shortcut", None) else []) \
                if not isinstance(item, Cat) else item.branches
            computed.update(c.output for c in getattr(item, "chunks", None) or [])
            if not all(in_order(b, computed) for b in inner):
                return False
            computed.add((item.add if isinstance(item, Res) else item.concat
                          if isinstance(item, Cat) else item.mul).output)
    return True


def linear(g: Graph) -> list[Item]:
    """Every layer in the graph's order: a join of named values where paths from
    different values meet, `from` where a layer reads a value other than the one
    before it, and series–parallel items wherever the paths from a value close."""
    done: set[str] = {"input"}
    items: list[Item] = []
    flow = "input"
    for layer in g.layers:
        if layer.output in done:
            continue
        if len(layer.inputs) > 1:
            if layer.kind not in MERGES:
                g.fail(layer, f"a {layer.kind} of several values")
            items.append(Jn(layer))
            done.add(layer.output)
            flow = layer.output
            continue
        (value,) = layer.inputs
        if value != flow:
            items.append(Fr(value))
            flow = value
        part = _closed_part(g, flow, done)
        if part is not None and layer.output in part[1]:
            items += part[0]
            done |= part[1]
            flow = part[2]
            continue
        items.append(g.place(layer, None))
        done.add(layer.output)
        flow = layer.output
    return items


def _closed_part(g: Graph, fork: str, done: set[str]
                 ) -> tuple[list[Item], set[str], str] | None:
    """The series–parallel items from `fork` to the first join its paths close at: the
    items, the values they compute, the join's value; None if there is none."""
    readers = [c for c in g.consumers.get(fork, []) if c.output not in done]
    if len(readers) < 2:
        return None
    ahead, joins = _ahead(g, fork, done)
    for join in joins:
        inside = _between(g, fork, join.output, ahead)
        if not _closed(g, fork, join, inside):
            continue
        opening = [c for c in readers if c.output in inside or c is join]
        if len(opening) < 2:
            continue   # one path in: the paths from `fork` do not meet here
        try:
            items = g.chain(fork, join.output, None, opening)
        except OnnxImportError:
            return None
        if not in_order(items, {*done, fork}):
            return None   # a branch reads a value of a branch built after it
        return items, inside | {join.output}, join.output
    return None


def _ahead(g: Graph, start: str, done: set[str]) -> tuple[set[str], list[Imported]]:
    """The values computed from `start` (not yet written), in the graph's order up to its
    MAX_CANDIDATES-th join, and those joins: the work stays proportional to that stretch,
    not to the rest of the network."""
    seen: set[str] = set()
    joins: list[Imported] = []
    todo = [(g.order[start], start)]
    while todo and len(joins) < MAX_CANDIDATES:
        _, v = heapq.heappop(todo)
        for c in g.consumers.get(v, []):
            if c.output not in seen and c.output not in done:
                seen.add(c.output)
                heapq.heappush(todo, (g.order[c.output], c.output))
        if v != start and g.by_out[v].kind in MERGES:
            joins.append(g.by_out[v])
    return seen, joins


def _between(g: Graph, start: str, end: str, ahead: set[str]) -> set[str]:
    """The values on the paths from `start` to `end`, both left out."""
    inside: set[str] = set()
    todo = [end]
    while todo:
        for i in g.by_out[todo.pop()].inputs:
            if i in ahead and i not in inside and i != end:
                inside.add(i)
                todo.append(i)
    return inside


def _closed(g: Graph, fork: str, join: Imported, inside: set[str]) -> bool:
    """Whether the paths from `fork` to `join` neither read nor are read from outside."""
    if any(i != fork and i not in inside for i in join.inputs):
        return False
    for v in inside:
        if any(i != fork and i not in inside for i in g.by_out[v].inputs):
            return False
        if any(c is not join and c.output not in inside for c in g.consumers.get(v, [])):
            return False
    return True
