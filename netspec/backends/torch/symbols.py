"""Numbers in generated PyTorch code: expressions of a block's parameters, and counters.

A block class is written once for all its calls, so every number in it is an
expression of the block's parameters (netspec.syntax.expr), written as Python with
`Expr.python`. A statement's words are read symbolically (`SymbolicReading`); the
names a loop gives its layers are counted in `Lin`, a linear form of the loop
variables (`2·j + 1`), with the builder's own naming scopes (netspec.language.names).
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Callable

from dataclasses import dataclass, field

from ...kinds.statement import Reading
from ...language.names import Names
from ...syntax import expr as E
from ...syntax.tree import (
    Assign, Aux, From, Gate, Group, Join, Labeled, LayerStmt, Merge, Node, Repeat, Residual,
)
from ...syntax.words import Word

#: The constructor's running count of channels, once it is a variable.
CH = E.Name("ch")

if TYPE_CHECKING:
    from ...kinds.base import Layer


class Unsupported(Exception):
    """A construct the generator does not write; becomes a TorchCodegenError at its position.

    `pos` is the innermost statement being written when it was raised (`located` once
    that is known; an outer statement leaves it alone)."""

    located = False
    pos = None


class Lin:
    """A counter in generated code: constant + Σ coefficient·variable (loops make it symbolic)."""

    def __init__(self, const: int = 0, terms: dict[str, int] | None = None) -> None:
        self.const = const
        self.terms = terms or {}

    def __add__(self, other: Lin | int) -> Lin:
        if isinstance(other, int):
            return Lin(self.const + other, dict(self.terms))
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + v
        return Lin(self.const + other.const, terms)

    def times(self, var: str) -> Lin:
        """This counter's constant, counted once per value of loop variable `var`."""
        if self.terms:
            raise Unsupported("nested loops whose counts are parameters")
        return Lin(0, {var: self.const} if self.const else {})

    def scaled(self, n: int) -> Lin:
        return Lin(self.const * n, {k: v * n for k, v in self.terms.items()})

    def py(self) -> str:
        parts = [f"{var}" if c == 1 else f"{c} * {var}" for var, c in self.terms.items() if c]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)

    @property
    def static(self) -> bool:
        return not any(self.terms.values())


def simplify(e: E.Expr) -> E.Expr:
    """`e` as its number when it reads no name; otherwise as written."""
    value = E.const(e)
    return E.Num(value) if value is not None else e


def condition(e: E.Expr) -> str:
    """A condition as Python, its constant parts `True`/`False`, the parts of an `and`/`or`
    joined as written (`c == c_in and s == 1`)."""
    e = simplify(e)
    if isinstance(e, E.Num):
        return repr(bool(e.n))
    if isinstance(e, E.Logic):
        return f" {e.op} ".join(condition(x) for x in e.items)
    if isinstance(e, E.Not):
        return ast.unparse(ast.parse(f"not ({condition(e.x)})", mode="eval"))
    return e.python()


def camel(name: str) -> str:
    """A block's class name: `basic_stage` → `BasicStage`."""
    out = "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)
    return out if out and not out[0].isdigit() else f"Net{out}"


def call_expr(fn: str, args: list[str]) -> str:
    """`fn(a, b)` on one line when short, else one argument per line."""
    one = f"{fn}({', '.join(args)})"
    if len(one) <= 72 and "\n" not in one:
        return one
    inner = "".join("    " + a.replace("\n", "\n    ") + ",\n" for a in args)
    return f"{fn}(\n{inner})"


class SymbolicReading(Reading[E.Expr]):
    """A statement read for the code generator: every number an expression of the block's
    parameters (`env`), C the channels read here (`channels`)."""

    def __init__(self, stmt: LayerStmt, env: dict[str, E.Expr],
                 channels: Callable[[], E.Expr]) -> None:
        super().__init__(stmt, _NoReports())
        self.env = env
        self.channels = channels

    def numbers(self, word: Word) -> tuple[E.Expr, ...]:
        return tuple(self.expression(e) for e in word.exprs)

    def expression(self, e: E.Expr) -> E.Expr:
        """`e` with parameters and C replaced, as the generated code computes it."""
        def name(n: str) -> E.Expr | None:
            if n in self.env:
                return self.env[n]
            if n == "C":
                return self.channels()
            raise Unsupported(f"`{n}` in an expression (the generated module does not track "
                              f"H and W)" if n in ("H", "W") else f"the parameter `{n}`")
        if isinstance(e, E.Bad):
            raise Unsupported(f"the expression `{e.shown}`")
        return simplify(e.substitute(name))

    def written(self, words: list[Word]) -> str:
        return " ".join(w.text for w in words)

    def then(self, stmt: LayerStmt) -> list[Layer]:
        raise Unsupported("a shorthand activation read symbolically")


class _NoReports:
    """The code generator reads only statements that built without errors."""

    def error(self, *args: object, **kwargs: object) -> None:
        raise Unsupported("a statement with errors")


@dataclass
class ClassText:
    """One generated class: its constructor lines and forward lines."""

    name: str
    signature: str
    doc: str
    sequential: bool
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    takes_branch: bool = False   # forward(x, branch): a `to branch` its caller's branch feeds


def scope(indexed: bool) -> Names[Lin]:
    """A naming scope whose counters are linear forms of loop variables."""
    return Names("", indexed, Lin(), Lin(1))


def default_name(names: Names[Lin], kind: str) -> str:
    """The next default name as a Python string expression: `'conv3'`, `'4'`, or an f-string."""
    n = names.take(kind)
    stem = "" if names.indexed else kind
    return repr(f"{stem}{n.const}") if n.static else f'f"{stem}{{{n.py()}}}"'


def has_joins(nodes: list[Node]) -> bool:
    """Whether residuals, merges, gates, aux heads, joins of named values or `from`s are
    among `nodes` (outside `[ ]`)."""
    for node in nodes:
        while isinstance(node, (Labeled, Assign)):
            node = node.item
        if isinstance(node, (Residual, Merge, Gate, Aux, Join, From)):
            return True
        if isinstance(node, Group) and not node.indexed and has_joins(node.body):
            return True
        if isinstance(node, Repeat) and has_joins([node.item]):
            return True
    return False


def has_param_loops(nodes: list[Node]) -> bool:
    """Whether a `repeat` with a parameter count is among `nodes` (outside `[ ]`)."""
    for node in nodes:
        while isinstance(node, Labeled):
            node = node.item
        if isinstance(node, Repeat) and node.count.symbolic:
            return True
        if isinstance(node, Group) and not node.indexed and has_param_loops(node.body):
            return True
    return False


