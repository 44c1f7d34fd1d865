"""Where something was written: a position in the spec or in a library it uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """1-based line and column, the length to underline, and the file.

    `file` is None for the spec itself, or the name of a library file it uses
    (`use "lib/resnet.ns"`): the parser gives every position it makes the file it
    is reading, so an error inside a library points into that file.
    """

    line: int
    column: int
    length: int = 1
    file: str | None = None
