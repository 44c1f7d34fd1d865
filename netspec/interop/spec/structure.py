"""Step 1 of writing a spec: the imported layer graph as a series–parallel tree.

Where a value fans out, the branches run to the add, mul or concat where they meet
(the first value all their paths reach), its consumers grouped by the input of
that join they run to, giving residuals (one branch may be the identity, the other
the body; a second non-empty branch is the projection where the module that adds
holds both), gates, and concat, add and mul of branches, and `upsample … to branch`
where a Resize takes its branch input's size. Concats of growing prefixes of the
same values (DenseNet's `cat(features)`) are first rewritten as concats of the
previous concat and the new value, which computes the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from ...kinds import Add, Concat, Multiply, Upsample
from ...kinds.registry import BY_MERGE_STATEMENT
from ..onnx.reader import Imported, OnnxImportError, module_path


@dataclass
class Res:
    """A residual: body + shortcut (None = identity), joined by `add`."""

    body: list[Any]
    shortcut: list[Any] | None
    add: Imported
    in_shape: tuple[int, ...] = ()


@dataclass
class Cat:
    """Parallel branches merged by `concat` (or by an `add` of two or more branches or a
    `mul` of two: the same family of merges); an empty branch is the input."""

    branches: list[list[Any]]
    concat: Imported
    chunks: list[Imported] | None = None   # a `split`: the run of channels each branch reads


@dataclass
class Gt:
    """A gate: the input times body(input), joined by `mul` (squeeze-and-excitation)."""

    body: list[Any]
    mul: Imported


def _merge_prefix_concats(layers: list[Imported]) -> None:
    """cat(a0..ak) where cat(a0..ak-1) exists → cat(that, ak): DenseNet's pattern."""
    by_inputs = {tuple(layer.inputs): layer for layer in layers if layer.kind == Concat.kind}
    for layer in layers:
        if layer.kind == Concat.kind and len(layer.inputs) > 2:
            prev = by_inputs.get(tuple(layer.inputs[:-1]))
            if prev is not None:
                layer.inputs = [prev.output, layer.inputs[-1]]


@dataclass
class Jn:
    """A join of named values, `concat(a, b)`: a merge that reads values computed
    elsewhere than the branches of one fork (each of its inputs is read by name)."""

    merge: Imported


@dataclass
class Fr:
    """`from a`: the items after it read the value `value`, not the one before them."""

    value: str


Item = Imported | Res | Cat | Gt | Jn | Fr


class Graph:
    """The imported layers as a graph: each value's consumers, post-dominators, order."""

    def __init__(self, layers: list[Imported], output: str,
                 input_shape: tuple[int, ...]) -> None:
        self.layers, self.output = layers, output
        self.by_out = {layer.output: layer for layer in layers}
        self.consumers: dict[str, list[Imported]] = {}
        for layer in layers:
            for i in dict.fromkeys(layer.inputs):
                self.consumers.setdefault(i, []).append(layer)
        self.order = {"input": -1} | {layer.output: n for n, layer in enumerate(layers)}
        # post-dominators: the values every path from v to the output passes through
        pdom: dict[str, frozenset[str]] = {output: frozenset([output])}
        for layer in reversed(layers):
            for v in [layer.output] if layer.output != output else []:
                succ = [c.output for c in self.consumers.get(v, [])]
                common = frozenset.intersection(*(pdom[s] for s in succ)) if succ else frozenset()
                pdom[v] = common | {v}
        self.pdom = pdom
        self.shape_of = {layer.output: layer.shape for layer in layers} | {"input": input_shape}

    def fail(self, layer: Imported, why: str) -> NoReturn:
        raise OnnxImportError(f"{layer.where}: {why}: netspec expresses branches only as "
                              f"`residual`, `gate`, and `concat`, `add` or `mul` of branches, "
                              f"each opening and closing at one value")

    @staticmethod
    def place(layer: Imported, fork: str | None) -> Imported:
        if layer.size_of and layer.size_of == fork:   # F.interpolate(x, size=fork.shape[-2:])
            layer.words = [*layer.words[:-1], Upsample.TO_BRANCH]
        return layer

    def reaches(self, start: str, target: str) -> bool:
        """Whether a path leads from value `start` to value `target`."""
        seen, todo = {start}, [start]
        while todo:
            v = todo.pop()
            if v == target:
                return True
            for c in self.consumers.get(v, []):
                if c.output not in seen and self.order[c.output] <= self.order[target]:
                    seen.add(c.output)
                    todo.append(c.output)
        return False

    def branch(self, v: str, group: list[Imported], u: str) -> list[Item]:
        """The branch from v through the consumers `group` to the join input u."""
        c = group[0]
        if len(group) == 1 and len(c.inputs) == 1:
            return [self.place(c, v), *self.chain(c.output, u, v)]
        return self.chain(v, u, v, group)

    def chain(self, v: str, stop: str, fork: str | None, only: list[Imported] | None = None
              ) -> list[Item]:
        """The items from value v to value `stop`: layers one after another, and the
        branches where a value fans out, to the join where they meet."""
        items: list[Item] = []
        while v != stop:
            cons, only = only or self.consumers.get(v, []), None
            if not cons:
                self.fail(self.by_out[v], "its output is not used on the way to the next join")
            if len(cons) == 1 and len(cons[0].inputs) == 1:
                items.append(self.place(cons[0], fork))
                v = cons[0].output
                continue
            if len(cons) == 1 and v in cons[0].inputs and cons[0].kind in MERGES and \
                    not any(self.reaches(v, u) for u in cons[0].inputs if u != v):
                items.append(Jn(cons[0]))   # it also reads values computed before the fork
                v = cons[0].output
                continue
            later = sorted(frozenset.intersection(*(self.pdom[c.output] for c in cons)),
                           key=self.order.__getitem__)
            if not later:
                self.fail(cons[0], "branches that never meet again")
            merge = self.by_out[later[0]]
            if merge.kind not in MERGES:
                self.fail(merge, f"branches meet at a {merge.kind}")
            groups: dict[str, list[Imported]] = {}
            for c in cons:
                if c is merge:
                    continue
                reach = [u for u in dict.fromkeys(merge.inputs) if u in self.pdom[c.output]]
                if len(reach) != 1:
                    self.fail(c, "a branch that does not run to one input of the join")
                groups.setdefault(reach[0], []).append(c)
            computed = [u for u in merge.inputs if u != v]
            if set(groups) != set(computed) or len(set(computed)) != len(computed) or \
                    merge.kind != Concat.kind and len(set(merge.inputs)) != len(merge.inputs):
                self.fail(merge, "a join of values that do not all branch from one value")
            branches = {u: self.branch(v, groups[u], u) for u in computed} | \
                ({v: []} if v in merge.inputs else {})
            items.append(self.fork(merge, [branches[u] for u in merge.inputs], v))
            v = merge.output
        return items

    def fork(self, merge: Imported, branches: list[list[Item]], v: str) -> Item:
        """The item whose branches (one per input of `merge`, in order) read v."""
        a, b = branches[:2]
        if merge.kind == Multiply.kind and not (a and b):   # x × gate(x), in either order
            return Gt(a or b, merge)
        if merge.kind == Add.kind and len(merge.inputs) == 2 and (not (a and b) or
                                       _residual(merge, a, b, self.shape_of[v])):
            return Res(a or b, (b or None) if a else None, merge, self.shape_of[v])
        if merge.kind == Multiply.kind and _broadcast(self.shape_of[merge.inputs[0]],
                                                      self.shape_of[merge.inputs[1]]):
            branches = branches[::-1]   # netspec's mul broadcasts its second branch
        cat = Cat(branches, merge)
        firsts = [b[0] if b and isinstance(b[0], Imported) else None for b in cat.branches]
        if merge.kind == Concat.kind and all(
                f is not None and f.chunk == (i, len(firsts))
                for i, f in enumerate(firsts)):   # split { branch … }
            cat.chunks = firsts
            cat.branches = [b[1:] for b in cat.branches]
        return cat


#: The layers that join paths.
MERGES = tuple(dict.fromkeys(k.kind for k in BY_MERGE_STATEMENT.values()))


def series_parallel(layers: list[Imported], output: str, input_shape: tuple[int, ...]
                    ) -> tuple[Graph, list[Item] | None]:
    """The layers as a graph, and as a series–parallel tree where the graph is one (None
    where a join reads values that do not all branch from one value: dag.py).

    Where a value fans out, its consumers are grouped by the input of the join
    (the first value all their paths reach) that each one runs to: a group of
    one is a branch; a larger group forks again inside the branch, down to the
    join where it meets. Each upsample to another value's H×W becomes `to branch`
    where that value is what its branch reads.
    """
    _merge_prefix_concats(layers)
    graph = Graph(layers, output, input_shape)
    try:
        return graph, graph.chain("input", output, None)
    except OnnxImportError:
        return graph, None


def _broadcast(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    """Whether `first` is one value per channel (1×1×C) multiplying a volume `second`."""
    return len(first) == 3 and first[:2] == (1, 1) and second[:2] != (1, 1)


def _residual(add: Imported, body: list[Any], shortcut: list[Any], shape: tuple[int, ...]
              ) -> bool:
    """Whether an add of two computed branches is a residual with a projection shortcut.

    netspec's own export says which statement made it (`residual` or `add`). In a
    torch export a projection is a shortcut used where the body changes the shape,
    and the module that adds (`layer1.0`) holds both paths, as in ResNet's
    `out += self.downsample(x)`; otherwise (LR-ASPP's head adds a path through the
    backbone to one of its own) the add is `add { branch … branch … }`.
    """
    if add.text:
        return add.text.startswith("residual")
    path, local = module_path(add.node)   # torch names it by its module: `/layer1/layer1.0/Add`
    owner = [*path, local] if add.node.startswith("/") and local else path
    return add.shape != shape and all(
        x.path[:len(owner)] == owner for item in [*body, *shortcut] for x in layers_of(item))


def layers_of(item: Item) -> list[Imported]:
    if isinstance(item, Imported):
        return [item]
    if isinstance(item, Res):
        return [*(x for i in item.body for x in layers_of(i)),
                *(x for i in item.shortcut or [] for x in layers_of(i)), item.add]
    if isinstance(item, Gt):
        return [*(x for i in item.body for x in layers_of(i)), item.mul]
    if isinstance(item, Jn):
        return [item.merge]
    if isinstance(item, Fr):
        return []
    return [*(item.chunks or []), *(x for b in item.branches for i in b for x in layers_of(i)),
            item.concat]
