"""Numbers while the builder expands a spec: `$params`, `{C/2}`, and statements read with them.

`Values` is the scope an expression is evaluated in: the parameters of the block
being expanded (and repeat counters), and C, H, W, the shape of the value flowing
in. Every failure is reported at the word that holds the expression, once; the
word is then `Unresolved` and the statement is skipped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from ..kinds.statement import Reading
from ..source.diagnostics import Reporter, SpecError, did_you_mean
from ..syntax.expr import EvalError, Scope
from ..syntax.tree import LayerStmt
from ..syntax.words import LABEL_PARAM, Word

if TYPE_CHECKING:
    from ..kinds.base import Layer, Shape


class Unresolved(Exception):
    """A `$param` or `{expression}` that has no value here (already reported)."""


class Values(Scope):
    """Names in an expression: block parameters and counters, then C, H and W."""

    def __init__(self, env: dict[str, int], shape: Shape | None, has_input: bool) -> None:
        self.env = env
        self.shape = shape
        self.has_input = has_input

    def lookup(self, name: str) -> int:
        if name in self.env:
            return self.env[name]
        if name in ("C", "H", "W"):
            if self.shape is None and not self.has_input:
                raise EvalError(f"`{name}` reads the incoming shape, but this layer comes "
                                f"before `input`", "start the spec with its `input`")
            if self.shape is None:
                raise EvalError(quiet=True)   # the shape is unknown after an earlier error
            if len(self.shape) != 3 and name != "C":
                raise EvalError(f"`{name}` is not defined: the input here is a vector")
            return self.shape[-1] if name == "C" else self.shape["HW".index(name)]
        raise EvalError(f"unknown parameter `{name}`" + ("" if self.env else
                                                         " (parameters exist only in blocks)"),
                        did_you_mean(name, [*self.env, "C", "H", "W"]))


def resolve(word: Word, scope: Values, rep: Reporter) -> tuple[int, ...]:
    """A numeric word's values, or Unresolved after reporting why it has none."""
    try:
        return word.values(scope)
    except EvalError as err:
        if not err.quiet:
            rep.error(word.pos, err.message, SpecError, hint=err.hint)
        raise Unresolved from None


def resolve_label(label: Word, scope: Values, rep: Reporter) -> Word:
    """A label with its `$param` parts filled in (`block$i-$j` → `block1-0`)."""
    if "$" not in label.text:
        return label

    def value(m: re.Match) -> str:
        try:
            return str(scope.lookup(m.group(1)))
        except EvalError as err:
            if not err.quiet:
                rep.error(label.pos, err.message, SpecError, hint=err.hint)
            raise Unresolved from None
    return Word(label.type, LABEL_PARAM.sub(value, label.text), label.pos, label.start,
                label.end)


class BuildReading(Reading[int]):
    """A statement read by the builder: every number an int in `scope`."""

    def __init__(self, stmt: LayerStmt, rep: Reporter, scope: Values, text: str,
                 then: Callable[[LayerStmt], list[Layer]]) -> None:
        super().__init__(stmt, rep)
        self.scope = scope
        self.source = text   # the text of the file the statement is in
        self._then = then
        self._resolved: dict[int, tuple[int, ...]] = {}

    def numbers(self, word: Word) -> tuple[int, ...]:
        key = id(word)
        if key not in self._resolved:
            self._resolved[key] = resolve(word, self.scope, self.rep)
        return self._resolved[key]

    def resolve_all(self) -> None:
        """Evaluate every number of the statement first, in order, as the statement reads."""
        for w in self.stmt.words:
            if w.parts:
                self.numbers(w)

    def written(self, words: list[Word]) -> str:
        """The words as written, or with their numbers filled in where one is a parameter."""
        first, last = words[0], words[-1]
        if not any(w.symbolic for w in words) and first.start >= 0 and last.end >= 0 and \
                all(self.source[w.start:w.end] == w.text for w in words):
            return self.source[first.start:last.end]
        return " ".join(w.with_values(self.numbers(w)).text if w.parts else w.text
                        for w in words)

    def then(self, stmt: LayerStmt) -> list[Layer]:
        return self._then(stmt)
