"""The spec tree: a spec (or a library) as written, before blocks and repeats expand.

The parser makes it from text, the ONNX importer from a model; the printer writes
any of them as text (`netspec fmt`), and the builder expands it into the network.
A node keeps its words (and so their positions) and where it starts and ends, and
the layout the printer preserves: whether it shares a line with the statement
before (`joined`), whether a blank line comes before it, whether a bracketed
group is written on one line (`inline`), and the comments written around it.

    LayerStmt   `conv 3x3 s2 x64 relu`: a grammar rule, its words, a shorthand activation
    Group       `{ ... }` (named by kind and count) or `[ ... ]` (numbered, as nn.Sequential)
    Labeled     `name: item`
    Repeat      `repeat N [as j] item`
    Residual    `residual[?] { body } [project|shortcut GROUP]`
    Merge       `concat|split|add|mul { branch GROUP ... }`
    Gate, Aux   `gate { body }`, `aux { body }`
    Call        `basic(64, s=2)`
    Assign      `name = item`: names the value the item gives
    Join        `concat(a, b, c)`, `add(a, b)`: a merge of named values
    From        `from name`: the flow goes on from a named value
    BlockDef    `block NAME(params) GROUP`
    Use         `use "lib.ns"`
"""

from __future__ import annotations

from typing import Union

from ..source.pos import Pos
from .words import Word


def _repr(node: object) -> str:
    """`Group(pos=…, body=[…], …)`: every attribute, for debugging and the parser's tests."""
    fields = ", ".join(f"{name}={value!r}" for name, value in vars(node).items())
    return f"{type(node).__name__}({fields})"


class Layout:
    """How a statement sits among its neighbours, and the comments around it: on the line of
    the statement before (`a; b`); the `# …` lines (and "" for a blank line) before it; a
    `# …` after it, on its last line."""

    def __init__(self, joined: bool = False, leading: list[str] | None = None,
                 trailing: str | None = None) -> None:
        self.joined = joined
        self.leading = leading if leading is not None else []
        self.trailing = trailing

    __repr__ = _repr


class Node:
    """A statement (or bracketed group): its first and last position, its layout.

    The nodes are plain classes rather than dataclasses: generating dataclass methods for
    the fifteen of them cost `netspec check` 0.07× an `import lark` (in instructions)."""

    def __init__(self, pos: Pos | None, end: Pos | None = None,
                 layout: Layout | None = None) -> None:
        self.pos = pos
        self.end = end
        self.layout = layout if layout is not None else Layout()

    __repr__ = _repr


class LayerStmt(Node):
    """One layer statement: its grammar rule (`conv`, `activation`...), its words (the
    keyword first), and a shorthand activation (`conv 3x3 x8 relu` is two layers)."""

    def __init__(self, pos: Pos | None, rule: str, words: list[Word],
                 act: LayerStmt | None = None, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.rule, self.words, self.act = rule, words, act

    @property
    def keyword(self) -> str:
        return self.words[0].text


class Group(Node):
    """`{ ... }` (indexed=False) or `[ ... ]` (indexed=True).

    `inline`: written on one line; `open_comment`: a `# …` after the opening bracket
    of a group written over several lines; `closing`: comments before its closing
    bracket (after the last statement).
    """

    def __init__(self, pos: Pos | None, body: list[Node], indexed: bool, inline: bool = True,
                 *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.body, self.indexed, self.inline = body, indexed, inline
        self.open_comment: str | None = None
        self.closing: list[str] = []


class Labeled(Node):
    """`name: item`."""

    def __init__(self, pos: Pos | None, label: Word, item: Node, *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.label, self.item = label, item


class Repeat(Node):
    """`repeat N item`, or `repeat N as var item` (`$var` counts 0, 1, ... N-1)."""

    def __init__(self, pos: Pos | None, count: Word, item: Node, var: Word | None = None, *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.count, self.item, self.var = count, item, var


class Residual(Node):
    """`residual[?] { body } [project|shortcut GROUP]`: the shortcut is None (the identity),
    a Group or a Labeled Group; its kind "project" (only where the shape changes) or
    "shortcut" (always)."""

    def __init__(self, pos: Pos | None, body: Group, optional: bool = False,
                 shortcut_kind: str | None = None, shortcut: Node | None = None, *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.body, self.optional = body, optional
        self.shortcut_kind, self.shortcut = shortcut_kind, shortcut


class Merge(Node):
    """`concat|split|add|mul { branch GROUP ... }`: each branch a Group or a Labeled Group;
    `split N,N,... { ... }`'s run sizes are the word `runs` (None: equal runs).

    `inline`: written on one line; `open_comment`/`closing` as for a Group; each branch's
    own layout says whether it shares a line with the branch before."""

    def __init__(self, pos: Pos | None, op: str, branches: list[Node], inline: bool = True, *,
                 end: Pos | None = None, runs: Word | None = None) -> None:
        super().__init__(pos, end)
        self.op, self.branches, self.inline = op, branches, inline
        self.runs = runs
        self.open_comment: str | None = None
        self.closing: list[str] = []


class Gate(Node):
    """`gate { body }`: output = input × body(input)."""

    def __init__(self, pos: Pos | None, body: Group, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.body = body


class Aux(Node):
    """`aux { body }`: a side head reading the current value, not computed at inference."""

    def __init__(self, pos: Pos | None, body: Group, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.body = body


class Call(Node):
    """A block call, `basic(64, s=2)`: positional or named arguments."""

    def __init__(self, pos: Pos | None, name: Word, args: list[tuple[Word | None, Word]], *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.name, self.args = name, args


class Assign(Node):
    """`name = item`: the value `item` gives is called `name` (no layer is named by it)."""

    def __init__(self, pos: Pos | None, name: Word, item: Node, *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.name, self.item = name, item


class Join(Node):
    """`concat(a, b, c)`, `add(a, b)`, `mul(a, b)`: a merge of the named values `refs`,
    in the order written."""

    def __init__(self, pos: Pos | None, op: str, refs: list[Word], *,
                 end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.op, self.refs = op, refs


class From(Node):
    """`from name`: the next statement reads the named value `ref`."""

    def __init__(self, pos: Pos | None, ref: Word, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.ref = ref


class BlockDef(Node):
    """`block NAME(params) GROUP`. `uses` counts its calls (for the unused-block warning);
    a block read from a library keeps that file's text in `source`."""

    def __init__(self, pos: Pos | None, name: Word, params: list[tuple[Word, Word | None]],
                 body: Group, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.name, self.params, self.body = name, params, body
        self.uses = 0
        self.source: str | None = None


class Use(Node):
    """`use "PATH"`: read the blocks of a library file."""

    def __init__(self, pos: Pos | None, path: Word, *, end: Pos | None = None) -> None:
        super().__init__(pos, end)
        self.path = path


Statement = Union[LayerStmt, Group, Labeled, Repeat, Residual, Merge, Gate, Aux, Call,
                  Assign, Join, From, BlockDef, Use]


class SpecFile:
    """A whole file: its statements, and the comments after the last one."""

    def __init__(self, body: list[Node], closing: list[str] | None = None) -> None:
        self.body = body
        self.closing = closing if closing is not None else []

    __repr__ = _repr


def unlabel(node: Node) -> tuple[Word | None, Node]:
    """(label, item) of a possibly labelled node."""
    if isinstance(node, Labeled):
        return node.label, node.item
    return None, node
