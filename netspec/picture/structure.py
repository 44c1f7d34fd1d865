"""The nesting of a network, from its IR tree: series of parallel paths, and references.

The builder keeps the structure the spec wrote (netspec.ir.tree): a residual, a gate
or merged branches fork one value into branches that one layer merges again (the
add, the concat, the mul). Each becomes a `Parallel` of `Series` over `Unit`s, the
thing a picture draws, which both layouts follow; block instances and groups are
series of their items. A join of named values (`concat(a, b)`) is a unit in its
series, and so is every layer after `from a`: a unit whose inputs are not (only)
the unit before it has references (`Unit.inputs`), drawn as edges from where those
values were drawn. `collapse` then folds the units whose names share a prefix
(`--depth`) into one unit each, as `check --depth` sums them into one row.

Everything here is linear in the number of layers, so a 10,000-layer spec lays
out in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..ir import tree as ir

if TYPE_CHECKING:
    from ..kinds import Layer
    from ..network import Network


@dataclass
class Unit:
    """One thing drawn: a layer, or a group of layers collapsed into one box."""

    layers: list[Layer]
    key: str                      # the name shown: the layer's, or the group's prefix
    call: str | None = None       # for a collapsed block instance, its call `basic(c=64)`
    folded: list[Layer] = field(default_factory=list)   # shape-keeping layers drawn with it
    named: dict[int, str] = field(default_factory=dict)  # value read (by id) → `from` name

    @property
    def layer(self) -> Layer:
        """The layer that represents the unit: the last one, whose output it shows."""
        return (self.folded or self.layers)[-1]

    @property
    def collapsed(self) -> bool:
        return len(self.layers) > 1 or self.layers[0].name != self.key

    def all_layers(self) -> list[Layer]:
        return [*self.layers, *self.folded]

    @property
    def inputs(self) -> list[Layer]:
        """The values the unit reads from outside itself, in order."""
        inside = {id(lay) for lay in self.all_layers()}
        seen: dict[int, Layer] = {}
        for lay in self.all_layers():
            for i in lay.inputs:
                if id(i) not in inside:
                    seen.setdefault(id(i), i)
        return list(seen.values())

    def read_names(self) -> dict[int, str]:
        """The names the spec reads values by (by layer id): a join's, or `from`'s."""
        first = self.layers[0]
        return {**self.named,
                **{id(i): n for i, n in zip(first.inputs, getattr(first, "reads", ()) or ())}}


@dataclass
class Parallel:
    """Branches that read the same value (`fork`) and end in one merge layer."""

    branches: list[Series]
    merge: Unit
    fork: Layer | None = None
    fork_name: str | None = None   # `from x` before it: the name its fork is read by


@dataclass
class Series:
    """Items one after the other, each reading the one before unless it has references."""

    items: list[Unit | Parallel]


Item = Unit | Parallel


def structure(net: Network) -> Series:
    """The network as nested series and parallel items, one Unit per layer (aux heads,
    which inference does not compute, are left out)."""
    return _series(net.tree)


def _series(node: ir.Node) -> Series:
    out: list[Item | ir.From] = []
    _add(node, out)
    items: list[Item] = []
    for i, item in enumerate(out):
        if not isinstance(item, ir.From):
            items.append(item)
            continue
        after = next((x for x in out[i + 1:] if not isinstance(x, ir.From)), None)
        if isinstance(after, Unit):
            after.named[id(item.value)] = item.name
        elif isinstance(after, Parallel) and after.fork is item.value:
            after.fork_name = item.name
    return Series(items)


def _add(node: ir.Node, out: list[Item | ir.From]) -> None:
    """Append what `node` draws to the series `out`."""
    if isinstance(node, ir.Seq):
        for child in node.items:
            _add(child, out)
    elif isinstance(node, ir.Instance):
        _add(node.body, out)
    elif isinstance(node, ir.Residual):
        if node.add is None:   # `residual?` where the shapes differ: the body alone
            _add(node.body, out)
            return
        shortcut = _series(node.shortcut) if node.shortcut is not None else Series([])
        out.append(Parallel([_series(node.body), shortcut], _unit(node.add), node.input))
    elif isinstance(node, ir.Branches):
        branches = [_series(b) for b in node.branches]
        for chunk, branch in zip(node.chunks, branches):
            branch.items.insert(0, _unit(chunk))
        out.append(Parallel(branches, _unit(node.merge), node.input))
    elif isinstance(node, ir.Gate):
        out.append(Parallel([Series([]), _series(node.body)], _unit(node.mul), node.input))
    elif isinstance(node, ir.Join):
        out.append(_unit(node.merge))
    elif isinstance(node, ir.From):
        out.append(node)   # its name labels its reader's reference (`_series`)
    elif isinstance(node, ir.Aux):
        return   # not computed at inference
    else:
        out.append(_unit(node))


def _unit(layer: Layer) -> Unit:
    return Unit([layer], layer.name)


def has_references(tree: Series) -> bool:
    """Whether a unit reads a value other than the one before it (the network is no
    series–parallel graph: a join of named values, or `from`)."""
    def walk(s: Series, before: Layer | None) -> bool:
        for item in s.items:
            if isinstance(item, Parallel):
                if item.fork is not before or any(walk(b, item.fork) for b in item.branches):
                    return True
                before = item.merge.layer
                continue
            reads = item.inputs
            if reads and (before is None or any(i is not before for i in reads)):
                return True
            before = item.layer
        return False
    return walk(tree, None)


def item_layers(item: Item | Series) -> list[Layer]:
    """Every layer inside an item, in the network's order within each path."""
    if isinstance(item, Unit):
        return item.all_layers()
    if isinstance(item, Series):
        return [lay for sub in item.items for lay in item_layers(sub)]
    return [lay for b in item.branches for lay in item_layers(b)] + item.merge.all_layers()


def collapse(tree: Series, depth: int, instances: dict[str, str]) -> Series:
    """Fold consecutive items whose layers all share a name prefix of `depth` parts."""
    def key(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    def item_key(item: Item) -> str | None:
        keys = {key(lay.name) for lay in item_layers(item)}
        return keys.pop() if len(keys) == 1 else None

    def walk(s: Series) -> Series:
        out: list[Item] = []
        run: list[Item] = []
        run_key: str | None = None

        def flush() -> None:
            if run:
                layers = [lay for it in run for lay in item_layers(it)]
                if len(layers) == 1 and layers[0].name == run_key:
                    out.append(run[0])
                else:
                    named = {k: v for it in run if isinstance(it, Unit) for k, v in it.named.items()}
                    out.append(Unit(layers, run_key or "", instances.get(run_key or ""),
                                    named=named))
            run.clear()

        for item in s.items:
            k = item_key(item)
            if k is not None and k == run_key:
                run.append(item)
                continue
            flush()
            run_key = k
            if k is not None:
                run.append(item)
            elif isinstance(item, Parallel):
                out.append(replace(item, branches=[walk(b) for b in item.branches]))
            else:
                out.append(item)
        flush()
        return Series(out)

    return walk(tree)
