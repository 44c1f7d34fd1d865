"""The words of a statement: each keyword, option, number or label, as written.

A `Word` is one token of the grammar (its terminal `type`: `SIZE`, `STRIDE`,
`CONV`, `NAME`...) with its text and position. The numbers in it are parsed into
expressions on first use (`exprs`): `s$s` holds one, `{k}x{k}` two. The builder
evaluates them (`values`), the printer spells them canonically (`canonical`),
the code generator writes them as Python. A word made by netspec itself (an
imported model's statement) has no position.
"""

from __future__ import annotations

from collections import namedtuple
import re

from ..source.pos import Pos
from . import expr as E

#: The letters before an option's number (`s2`, `x64`, `op1`, `eps1e-3`).
PREFIXES = {"STRIDE": "s", "PADDING": "p", "DILATION": "d", "GROUPS": "g", "FILTERS": "x",
            "OUTPUT_PADDING": "op", "EPS": "eps", "GAMMA": "gamma"}
#: Terminals whose text is whole numbers: `$param`, `{expression}` or digits, `x`-separated
#: (a split's RUNS `,`-separated; a slice's RANGE `A:B`, either end left out or not).
NUMERIC = {"SIZE", "VALUE", "RUNS", "RANGE", *PREFIXES} - {"EPS", "GAMMA"}
#: What separates the numbers of a numeric word, where it is not `x`.
SEPARATORS = {"RUNS": ",", "RANGE": ":"}
#: One number: digits, `$param` or `{expression}` (the grammar's `_N`; greedy, as it reads).
_PART = re.compile(r"(-?\d+)|\$([A-Za-z_]\w*)|\{([^{}\n]*)\}")
#: A `$param` part of a label (`block$i-$j`).
LABEL_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


class Part(namedtuple("Part", "expr form source")):
    """One number of a word: its expression, and whether it was `$name` or `{...}`."""

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    expr: E.Expr
    form: str  # "digits", "$" or "{}"
    source: str  # the text inside `{ }`, the name after `$`, or the digits

    def canonical(self) -> str:
        if self.form == "$":
            return f"${self.source}"
        if self.form == "{}":
            return "{" + self.expr.text() + "}"
        return self.source


class Word:
    """One token of a statement: grammar terminal, text as written, where it was written.

    `start`/`end` are offsets in its file's text (-1 for a word netspec made). Never changed
    once made; two words are equal when they are the same terminal with the same text.
    """

    __slots__ = ("type", "text", "pos", "start", "end", "_parts")

    def __init__(self, type: str, text: str, pos: Pos | None = None, start: int = -1,
                 end: int = -1) -> None:
        self.type, self.text, self.pos, self.start, self.end = type, text, pos, start, end
        self._parts: tuple[Part, ...] | None = None

    def __repr__(self) -> str:
        return f"Word({self.type!r}, {self.text!r}, {self.pos!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Word) and (self.type, self.text) == (other.type, other.text)

    def __hash__(self) -> int:
        return hash((self.type, self.text))

    def __str__(self) -> str:
        return self.text

    @property
    def prefix(self) -> str:
        """The option letters before the number(s): `s`, `op`, `x`, or `` for a size."""
        if self.type == "LRN_OPTION":
            return self.text[0]
        return PREFIXES.get(self.type, "")

    @property
    def parts(self) -> tuple[Part, ...]:
        """The numbers of a numeric word, in order (a size's dimensions), parsed once."""
        if self._parts is None:
            self._parts = self._parse_parts()
        return self._parts

    def _parse_parts(self) -> tuple[Part, ...]:
        if self.type not in NUMERIC:
            return ()
        out = []
        for m in _PART.finditer(self.text, len(self.prefix)):
            digits, name, inner = m.groups()
            if digits is not None:
                out.append(Part(E.Num(int(digits)), "digits", digits))
            elif name is not None:
                out.append(Part(E.Name(name), "$", name))
            else:
                out.append(Part(E.parse(inner), "{}", inner))
        return tuple(out)

    @property
    def exprs(self) -> tuple[E.Expr, ...]:
        return tuple(p.expr for p in self.parts)

    @property
    def symbolic(self) -> bool:
        """Whether a number here is a `$param` or `{expression}`."""
        return any(p.form != "digits" for p in self.parts) or (
            self.type not in NUMERIC and "$" in self.text)

    def values(self, scope: E.Scope) -> tuple[int, ...]:
        """Its numbers in `scope` (EvalError, with the part's text, when one has none)."""
        return tuple(p.expr.value(scope, p.source) for p in self.parts)

    def with_values(self, values: tuple[int, ...]) -> Word:
        """The same word with its numbers written out (`x{4*c}` → `x256`)."""
        return Word(self.type, self._joined([str(v) for v in values]), self.pos,
                    self.start, self.end)

    def canonical(self) -> str:
        """The printer's spelling: expressions spaced the one way `netspec fmt` writes them."""
        if not self.parts:
            return self.text
        return self._joined([p.canonical() for p in self.parts])

    @property
    def range_ends(self) -> tuple[bool, bool]:
        """A RANGE's ends as written: (start written, stop written); `:8` is (False, True)."""
        body = self.text[len(self.prefix):]
        return not body.startswith(":"), not body.endswith(":")

    def _joined(self, numbers: list[str]) -> str:
        """The word's text with `numbers` for its numbers, separated as its type is."""
        if self.type == "RANGE" and len(numbers) == 1:   # `:B` or `A:`
            return f":{numbers[0]}" if not self.range_ends[0] else f"{numbers[0]}:"
        return self.prefix + SEPARATORS.get(self.type, "x").join(numbers)

    @property
    def number(self) -> float:
        """A decimal number: `dropout 0.5`, `leaky 0.1`, `eps1e-3`, `gamma1.7`, `a0.0001`."""
        return float(self.text[len(self.prefix):])


def word(type: str, text: str) -> Word:
    """A word netspec writes itself (an imported model's statement), without a position."""
    return Word(type, text)


def number_word(type: str, values: int | tuple[int, ...] | str) -> Word:
    """A numeric word from its value(s) or a parameter (`$c`): `number_word("STRIDE", 2)` is `s2`."""
    if isinstance(values, int):
        values = (values,)
    text = values if isinstance(values, str) else "x".join(map(str, values))
    return Word(type, PREFIXES.get(type, "") + text)
