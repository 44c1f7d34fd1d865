"""The syntax tree: what each statement says, with the tokens (and so positions) it was written with.

The parser (parser.py) makes these nodes; the builder (builder.py) walks them;
nothing of Lark's parse tree leaves the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from ._lark import Token
from .layers import Pos


def pos_of(tok: Token) -> Pos:
    """Where a token was written."""
    return Pos(tok.line, tok.column, max(1, len(tok)))


def span(first: Token, last: Token) -> Pos:
    """From the start of `first` to the end of `last` (on one line)."""
    length = last.end_pos - first.start_pos if first.line == last.line else len(first)
    return Pos(first.line, first.column, max(1, length))


@dataclass
class LayerStmt:
    """One layer statement as written: its grammar rule and tokens (params unresolved)."""

    rule: str
    items: list[Any]
    pos: Pos


@dataclass
class Group:
    """`{ ... }` (indexed=False) or `[ ... ]` (indexed=True)."""

    body: list[Any]
    indexed: bool
    pos: Pos


@dataclass
class Labeled:
    """`name: item`."""

    name: Token
    item: Any


@dataclass
class Repeat:
    """`repeat N item`, or `repeat N as var item` (`$var` counts 0, 1, ... N-1)."""

    count: Token
    item: Any
    pos: Pos
    var: Token | None = None


@dataclass
class Residual:
    """`residual[?] { body } [project|shortcut GROUP]`."""

    body: Group
    optional: bool
    shortcut_kind: str | None      # None (identity), "project" or "shortcut"
    shortcut: Any                  # Group or Labeled(Group), or None
    pos: Pos


@dataclass
class Concat:
    """`concat { branch GROUP ... }`, or `split { ... }` (each branch reads its own channels),
    or `add { ... }` / `mul { ... }` (op: how the branches' outputs are merged)."""

    branches: list[Any]            # Group or Labeled(Group)
    pos: Pos
    split: bool = False
    op: str = "concat"             # "concat", "add" or "mul"


@dataclass
class Gate:
    """`gate { body }`: output = input × body(input)."""

    body: Group
    pos: Pos


@dataclass
class Aux:
    """`aux { body }`: a side head reading the current value, not computed at inference."""

    body: Group
    pos: Pos


@dataclass
class Call:
    """A block call, `basic(64, s=2)`: positional or named arguments."""

    name: Token
    args: list[tuple[Token | None, Token]]
    pos: Pos


@dataclass
class BlockDef:
    """`block NAME(params) GROUP`; `uses` counts its calls, for the unused-block warning.

    A block read from a library keeps that file's text in `source`, so that any
    reporter building it can show the library's lines.
    """

    name: Token
    params: list[tuple[Token, Token | None]]
    body: Group
    pos: Pos
    uses: int = field(default=0)
    source: str | None = None


@dataclass
class Use:
    """`use "PATH"`: read the blocks of a library file (see library.py)."""

    path: Token
    pos: Pos


Node = Union[LayerStmt, Group, Labeled, Repeat, Residual, Concat, Gate, Aux, Call, BlockDef, Use]
