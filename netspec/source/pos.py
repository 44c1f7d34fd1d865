"""Where something was written: a position in the spec or in a library it uses.

The small values `netspec check` makes (Pos, Diagnostic, Part, Row, Field...) are
subclasses of `collections.namedtuple` whose bodies restate the fields' types, not
`typing.NamedTuple` classes: with postponed annotations, typing compiles every field's
annotation when the class is made, 2.7 M instructions for a two-field class, and
start-up pays for each (tests/test_startup.py).
"""

from __future__ import annotations

from collections import namedtuple


class Pos(namedtuple("Pos", "line column length file", defaults=(1, None))):
    """1-based line and column, the length to underline, and the file.

    `file` is None for the spec itself, or the name of a library file it uses
    (`use "lib/resnet.ns"`): the parser gives every position it makes the file it
    is reading, so an error inside a library points into that file.
    """

    __slots__ = ()
    line: int
    column: int
    length: int
    file: str | None
