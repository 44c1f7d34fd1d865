"""The nesting of a network, recovered from its layers: series of parallel paths.

netspec builds series–parallel graphs only: a residual or a concat forks the value
that flows into branches and merges them again in one layer (the add, the concat,
any layer with several inputs). Walking back from each merge along its branches,
jumping over inner merges to their own forks, finds the layer where the branches
split. The result is a tree of `Series` and `Parallel` items over `Unit`s, the
thing a picture draws, which both layouts follow; `collapse` then folds the units
whose names share a prefix (`--depth`) into one unit each, as `check --depth` sums
them into one row.

Everything here is linear in the number of layers, so a 10,000-layer spec lays
out in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

    @property
    def layer(self) -> Layer:
        """The layer that represents the unit: the last one, whose output it shows."""
        return (self.folded or self.layers)[-1]

    @property
    def collapsed(self) -> bool:
        return len(self.layers) > 1 or self.layers[0].name != self.key

    def all_layers(self) -> list[Layer]:
        return [*self.layers, *self.folded]


@dataclass
class Parallel:
    """Branches that read the same value and end in one merge layer."""

    branches: list[Series]
    merge: Unit


@dataclass
class Series:
    """Items one after the other, each reading the one before."""

    items: list[Unit | Parallel]


Item = Unit | Parallel


def structure(net: Network) -> Series:
    """The network as nested series and parallel items, one Unit per layer."""
    layers = net.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    fork: dict[int, Layer | None] = {}

    def back(layer: Layer) -> Layer | None:
        if len(layer.inputs) == 1:
            return layer.inputs[0]
        return fork.get(id(layer)) if layer.inputs else None

    for layer in layers:   # in order: an inner merge's fork is known before the outer one's
        if len(layer.inputs) < 2:
            continue
        ptrs: list[Layer | None] = list(layer.inputs)
        while len({id(p) for p in ptrs}) > 1 and None not in ptrs:
            j = max(range(len(ptrs)), key=lambda k: index[id(ptrs[k])])
            ptrs[j] = back(ptrs[j])   # type: ignore[arg-type]
        fork[id(layer)] = ptrs[0]

    def series(end: Layer, stop: Layer | None) -> Series:
        items: list[Item] = []
        cur: Layer | None = end
        while cur is not None and cur is not stop:
            start = fork.get(id(cur))
            if start is not None:
                items.append(Parallel([series(i, start) for i in cur.inputs],
                                      Unit([cur], cur.name)))
                cur = start
            else:
                items.append(Unit([cur], cur.name))
                cur = cur.inputs[0] if cur.inputs else None
        items.reverse()
        return Series(items)

    return series(layers[-1], None)


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
                    out.append(Unit(layers, run_key or "", instances.get(run_key or "")))
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
                out.append(Parallel([walk(b) for b in item.branches], item.merge))
            else:
                out.append(item)
        flush()
        return Series(out)

    return walk(tree)
