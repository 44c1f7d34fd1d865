"""The syntax tree: what each statement says, with the tokens (and so positions) it was written with.

The parser (parser.py) makes these nodes; the builder (builder.py) walks them;
nothing of Lark's parse tree leaves the parser.
"""

from __future__ import annotations

from typing import Any, Union

from ._lark import Token
from .layers import Pos
from .values import Record


def pos_of(tok: Token) -> Pos:
    """Where a token was written."""
    return Pos(tok.line, tok.column, max(1, len(tok)))


def span(first: Token, last: Token) -> Pos:
    """From the start of `first` to the end of `last` (on one line)."""
    length = last.end_pos - first.start_pos if first.line == last.line else len(first)
    return Pos(first.line, first.column, max(1, length))


class LayerStmt(Record):
    """One layer statement as written: its grammar rule and tokens (params unresolved)."""

    __slots__ = ("rule", "items", "pos")

    def __init__(self, rule: str, items: list[Any], pos: Pos) -> None:
        self.rule, self.items, self.pos = rule, items, pos


class Group(Record):
    """`{ ... }` (indexed=False) or `[ ... ]` (indexed=True)."""

    __slots__ = ("body", "indexed", "pos")

    def __init__(self, body: list[Any], indexed: bool, pos: Pos) -> None:
        self.body, self.indexed, self.pos = body, indexed, pos


class Labeled(Record):
    """`name: item`."""

    __slots__ = ("name", "item")

    def __init__(self, name: Token, item: Any) -> None:
        self.name, self.item = name, item


class Repeat(Record):
    """`repeat N item`, or `repeat N as var item` (`$var` counts 0, 1, ... N-1)."""

    __slots__ = ("count", "item", "pos", "var")

    def __init__(self, count: Token, item: Any, pos: Pos, var: Token | None = None) -> None:
        self.count, self.item, self.pos, self.var = count, item, pos, var


class Residual(Record):
    """`residual[?] { body } [project|shortcut GROUP]`."""

    __slots__ = ("body", "optional", "shortcut_kind", "shortcut", "pos")

    def __init__(self, body: Group, optional: bool, shortcut_kind: str | None, shortcut: Any,
                 pos: Pos) -> None:
        self.body = body
        self.optional = optional
        self.shortcut_kind = shortcut_kind   # None (identity), "project" or "shortcut"
        self.shortcut = shortcut             # Group or Labeled(Group), or None
        self.pos = pos


class Concat(Record):
    """`concat { branch GROUP ... }`, or `split { ... }` (each branch reads its own channels),
    or `add { ... }` / `mul { ... }` (op: how the branches' outputs are merged)."""

    __slots__ = ("branches", "pos", "split", "op")

    def __init__(self, branches: list[Any], pos: Pos, split: bool = False,
                 op: str = "concat") -> None:
        self.branches = branches   # Group or Labeled(Group)
        self.pos = pos
        self.split = split
        self.op = op               # "concat", "add" or "mul"


class Gate(Record):
    """`gate { body }`: output = input × body(input)."""

    __slots__ = ("body", "pos")

    def __init__(self, body: Group, pos: Pos) -> None:
        self.body, self.pos = body, pos


class Aux(Record):
    """`aux { body }`: a side head reading the current value, not computed at inference."""

    __slots__ = ("body", "pos")

    def __init__(self, body: Group, pos: Pos) -> None:
        self.body, self.pos = body, pos


class Call(Record):
    """A block call, `basic(64, s=2)`: positional or named arguments."""

    __slots__ = ("name", "args", "pos")

    def __init__(self, name: Token, args: list[tuple[Token | None, Token]], pos: Pos) -> None:
        self.name, self.args, self.pos = name, args, pos


class BlockDef(Record):
    """`block NAME(params) GROUP`; `uses` counts its calls, for the unused-block warning.

    A block read from a library keeps that file's text in `source`, so that any
    reporter building it can show the library's lines.
    """

    __slots__ = ("name", "params", "body", "pos", "uses", "source")

    def __init__(self, name: Token, params: list[tuple[Token, Token | None]], body: Group,
                 pos: Pos, uses: int = 0, source: str | None = None) -> None:
        self.name, self.params, self.body, self.pos = name, params, body, pos
        self.uses = uses
        self.source = source


class Use(Record):
    """`use "PATH"`: read the blocks of a library file (see library.py)."""

    __slots__ = ("path", "pos")

    def __init__(self, path: Token, pos: Pos) -> None:
        self.path, self.pos = path, pos


Node = Union[LayerStmt, Group, Labeled, Repeat, Residual, Concat, Gate, Aux, Call, BlockDef, Use]
