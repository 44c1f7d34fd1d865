"""The built network as a tree: the structure the spec wrote, with every layer in it.

The builder expands the spec tree (blocks called, repeats unrolled, numbers
resolved, shapes inferred) into these nodes. Each keeps the spec-tree node it was
built from (`syntax`) and the block parameters it was built with (`env`), so a
code generator can ask, of any statement in a block, what every instance of it
became. Flattening the tree (`layers`) gives the layer graph the backends run:
each layer lists the layers it reads in `inputs`, so a join may read any earlier
value, not only values that branch from one point.

    Seq        items one after another: a `{ }` or `[ ]` group, a block's body, a branch
    Instance   one call of a block: the block, its arguments, its name prefix, its body
    Residual   body + shortcut (or none), and the add that joins them; what was decided
    Branches   concat, split, add, mul: branches of one input, and the merge layer
    Gate       the input times what its body makes of it
    Aux        a side head, not computed at inference
    Join       concat, add or mul of named values (`concat(a, b)`): any earlier values
    From       the flow going on from a named value (`from a`): no layer
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ..kinds.base import Layer


class Built:
    """What every tree node keeps: the spec-tree node it came from and the parameters
    of the block it was built in. (Plain classes, not dataclasses: on `netspec check`'s
    start-up path, generating dataclass methods for these seven cost 0.05× an `import lark`.)"""

    def __init__(self, syntax: Any = None, env: dict[str, int] | None = None) -> None:
        self.syntax = syntax
        self.env = env if env is not None else {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in ("syntax",))
        return f"{type(self).__name__}({fields})"


class Seq(Built):
    """Items one after another; `prefix` is the name its items are under ("" for none)."""

    def __init__(self, items: list[Node] | None = None, prefix: str = "", indexed: bool = False,
                 *, syntax: Any = None, env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.items = items if items is not None else []
        self.prefix, self.indexed = prefix, indexed


class Instance(Built):
    """One call of a block: `layer2.0` = basic(c=128, s=2)."""

    def __init__(self, block: str, args: dict[str, int], prefix: str, body: Seq,
                 input: Layer | None, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.block, self.args, self.prefix, self.body = block, args, prefix, body
        self.input = input      # the value it reads

    @property
    def call(self) -> str:
        """`basic(c=128, s=2)`."""
        return f"{self.block}({', '.join(f'{k}={v}' for k, v in self.args.items())})"


class Residual(Built):
    """`residual`: the body, the shortcut (None: the identity) and their add (None when
    `residual?` found shapes that differ, or after an error). `projected`: the shortcut
    is a projection; `skipped`: `residual?` left out the skip. `channels`: into the
    residual and out of its body; `block_channels`: what the block instance reads."""

    def __init__(self, input: Layer | None, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.input = input
        self.body = Seq()
        self.shortcut: Seq | None = None
        self.add: Layer | None = None
        self.projected = False
        self.skipped = False
        self.channels: tuple[int | None, int | None] = (None, None)
        self.block_channels: int | None = None


class Branches(Built):
    """concat, split, add or mul of branches that read one input (a split's branches read
    its `chunks`), merged by `merge`."""

    def __init__(self, op: str, input: Layer | None, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.op, self.input = op, input
        self.chunks: list[Layer] = []
        self.branches: list[Seq] = []
        self.merge: Layer | None = None


class Gate(Built):
    """x × body(x)."""

    def __init__(self, input: Layer | None, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.input = input
        self.body = Seq()
        self.mul: Layer | None = None


class Aux(Built):
    """A side head: its layers are part of the network, not of inference."""

    def __init__(self, input: Layer | None, body: Seq, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.input, self.body = input, body


class Join(Built):
    """`concat(a, b)`: the merge layer reading the named values `reads` (name, value)."""

    def __init__(self, op: str, reads: list[tuple[str, Layer]], *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.op, self.reads = op, reads
        self.merge: Layer | None = None


class From(Built):
    """`from a`: the statements after it read `value`, named `name`."""

    def __init__(self, name: str, value: Layer, *, syntax: Any = None,
                 env: dict[str, int] | None = None) -> None:
        super().__init__(syntax, env)
        self.name, self.value = name, value


Node = Union["Layer", Seq, Instance, Residual, Branches, Gate, Aux, Join, From]
#: The tree's own nodes (every other node is a layer).
STRUCTURE = (Seq, Instance, Residual, Branches, Gate, Aux, Join, From)


def children(node: Node) -> Iterator[Node]:
    """The nodes directly inside `node`, in the order they were built."""
    if isinstance(node, Seq):
        yield from node.items
    elif isinstance(node, (Instance, Gate, Aux)):
        yield node.body
        if isinstance(node, Gate) and node.mul is not None:
            yield node.mul
    elif isinstance(node, Residual):
        yield node.body
        if node.shortcut is not None:
            yield node.shortcut
        if node.add is not None:
            yield node.add
    elif isinstance(node, Branches):
        yield from node.chunks
        yield from node.branches
        if node.merge is not None:
            yield node.merge
    elif isinstance(node, Join) and node.merge is not None:
        yield node.merge


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node inside it, outermost first."""
    yield node
    for child in children(node):
        yield from walk(child)


def layers(node: Node) -> list[Layer]:
    """Every layer in the tree, in the order it was built: the layer graph, flattened."""
    return [n for n in walk(node) if not isinstance(n, STRUCTURE)]


def instances_of(tree: Node, syntax: Any) -> list[Any]:
    """Every node of `tree` built from spec-tree node `syntax`."""
    return [n for n in walk(tree) if getattr(n, "syntax", None) is syntax]
