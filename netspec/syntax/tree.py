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
    BlockDef    `block NAME(params) GROUP`
    Use         `use "lib.ns"`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..source.pos import Pos
from .words import Word


@dataclass(eq=False)
class Layout:
    """How a statement sits among its neighbours, and the comments around it."""

    joined: bool = False               # on the line of the statement before (`a; b`)
    blank_before: bool = False         # a blank line separates it from what comes before
    leading: list[str] = field(default_factory=list)    # `# …` lines just before it
    trailing: str | None = None        # a `# …` after it, on its last line


@dataclass(eq=False)
class Node:
    """A statement (or bracketed group): its first and last position, its layout."""

    pos: Pos | None
    end: Pos | None = field(default=None, kw_only=True)
    layout: Layout = field(default_factory=Layout, kw_only=True)


@dataclass(eq=False)
class LayerStmt(Node):
    """One layer statement: its grammar rule (`conv`, `activation`...), its words (the
    keyword first), and a shorthand activation (`conv 3x3 x8 relu` is two layers)."""

    rule: str
    words: list[Word]
    act: LayerStmt | None = None

    @property
    def keyword(self) -> str:
        return self.words[0].text


@dataclass(eq=False)
class Group(Node):
    """`{ ... }` (indexed=False) or `[ ... ]` (indexed=True).

    `inline`: written on one line; `open_comment`: a `# …` after the opening bracket
    of a group written over several lines; `closing`: comments before its closing
    bracket (after the last statement).
    """

    body: list[Node]
    indexed: bool
    inline: bool = True
    open_comment: str | None = None
    closing: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Labeled(Node):
    """`name: item`."""

    label: Word
    item: Node


@dataclass(eq=False)
class Repeat(Node):
    """`repeat N item`, or `repeat N as var item` (`$var` counts 0, 1, ... N-1)."""

    count: Word
    item: Node
    var: Word | None = None


@dataclass(eq=False)
class Residual(Node):
    """`residual[?] { body } [project|shortcut GROUP]`: the shortcut is None (the identity),
    a Group or a Labeled Group; its kind "project" (only where the shape changes) or
    "shortcut" (always)."""

    body: Group
    optional: bool = False
    shortcut_kind: str | None = None
    shortcut: Node | None = None


@dataclass(eq=False)
class Merge(Node):
    """`concat|split|add|mul { branch GROUP ... }`: each branch a Group or a Labeled Group.

    `inline`: written on one line; `open_comment`/`closing` as for a Group; each branch's
    own layout says whether it shares a line with the branch before."""

    op: str
    branches: list[Node]
    inline: bool = True
    open_comment: str | None = None
    closing: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Gate(Node):
    """`gate { body }`: output = input × body(input)."""

    body: Group


@dataclass(eq=False)
class Aux(Node):
    """`aux { body }`: a side head reading the current value, not computed at inference."""

    body: Group


@dataclass(eq=False)
class Call(Node):
    """A block call, `basic(64, s=2)`: positional or named arguments."""

    name: Word
    args: list[tuple[Word | None, Word]]


@dataclass(eq=False)
class BlockDef(Node):
    """`block NAME(params) GROUP`. `uses` counts its calls (for the unused-block warning);
    a block read from a library keeps that file's text in `source`."""

    name: Word
    params: list[tuple[Word, Word | None]]
    body: Group
    uses: int = 0
    source: str | None = None


@dataclass(eq=False)
class Use(Node):
    """`use "PATH"`: read the blocks of a library file."""

    path: Word


Statement = Union[LayerStmt, Group, Labeled, Repeat, Residual, Merge, Gate, Aux, Call,
                  BlockDef, Use]


@dataclass(eq=False)
class SpecFile:
    """A whole file: its statements, and the comments after the last one."""

    body: list[Node]
    closing: list[str] = field(default_factory=list)


def unlabel(node: Node) -> tuple[Word | None, Node]:
    """(label, item) of a possibly labelled node."""
    if isinstance(node, Labeled):
        return node.label, node.item
    return None, node
