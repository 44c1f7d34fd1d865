"""Numbers in a spec that are not digits: `$param` and `{expression}`.

An expression is parsed once, when its statement is read, into a small tree of
`Expr` nodes, and then put to three uses, each one method of the tree:

    value(scope)   its number, for the builder (`scope` knows parameters and C, H, W);
    text()         the canonical spelling, for the printer (`netspec fmt`);
    python(names)  the same computation as Python source, for `export --torch`.

The language's arithmetic is whole numbers: `+ - * // %`, `/` that must divide
exactly, comparisons (1 or 0) and `A if CONDITION else B`. `And`, `Or` and `Not`
exist only for the code generator, which writes the conditions under which a
shortcut exists; no spec can write them.

Anything else (a float, a call, `**`) parses into a `Bad` node that reports when
it is evaluated, so that a mistake inside a block no one calls stays silent, as
it always has.
"""

from __future__ import annotations

import ast
import operator
from typing import Callable, Mapping

from ..source.limits import MAX_EXPRESSION, MAX_VALUE

#: What an expression may use, for the message about one that uses something else.
SUPPORTED = ("use whole numbers, parameters, C, H, W, + - * / // % ( ), comparisons and "
             "`A if CONDITION else B`")


class EvalError(Exception):
    """An expression that has no value here; `message` and `hint` say why.

    `quiet` errors were reported before (a shape unknown after an earlier error).
    """

    def __init__(self, message: str = "", hint: str | None = None, quiet: bool = False) -> None:
        super().__init__(message)
        self.message, self.hint, self.quiet = message, hint, quiet


class Scope:
    """What names mean while an expression is evaluated: override `lookup`."""

    def lookup(self, name: str) -> int:
        """The value of `name`, or EvalError saying why it has none."""
        raise EvalError(f"unknown parameter `{name}`")


class Env(Scope):
    """Names from a dict; anything else is unknown."""

    def __init__(self, values: Mapping[str, int]) -> None:
        self.values = values

    def lookup(self, name: str) -> int:
        if name in self.values:
            return self.values[name]
        raise EvalError(f"unknown parameter `{name}`")


# ---- the tree ------------------------------------------------------------------------

class Expr:
    """A node of an expression: a value, never changed once made, compared and hashed by its
    fields (`__slots__`).

    Plain classes rather than dataclasses: the dataclass machinery generating their
    methods cost `netspec check` 0.04× an `import lark` (measured in instructions), for
    nine classes on its start-up path."""

    __slots__: tuple[str, ...] = ()
    #: Python's precedence of the node, for parentheses (higher binds tighter).
    precedence = 100

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self._key()))})"

    def value(self, scope: Scope, source: str = "") -> int:
        """This expression's number in `scope`; EvalError when it has none."""
        raise NotImplementedError

    def text(self) -> str:
        """The canonical spec spelling (inside `{ }`)."""
        raise NotImplementedError

    def python(self, names: Callable[[str], Expr | None] | None = None) -> str:
        """Python source computing the same; `names` may replace a name by an expression."""
        return ast.unparse(self._ast(names or (lambda n: None)))

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        raise NotImplementedError

    def names(self) -> set[str]:
        """Every name the expression reads."""
        return set()

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        """This expression with names replaced where `names` gives an expression."""
        return self


class Num(Expr):
    """A whole number."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def value(self, scope: Scope, source: str = "") -> int:
        return self.n

    def text(self) -> str:
        return str(self.n)

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        if isinstance(self.n, bool):
            return ast.Constant(self.n)
        return ast.Constant(self.n) if self.n >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-self.n))


class Name(Expr):
    """A parameter, a repeat's counter, or C, H, W (the incoming channels, height, width)."""

    __slots__ = ("id",)

    def __init__(self, id: str) -> None:
        self.id = id

    def value(self, scope: Scope, source: str = "") -> int:
        return scope.lookup(self.id)

    def text(self) -> str:
        return self.id

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        other = names(self.id)
        return other._ast(lambda n: None) if other is not None else ast.Name(self.id)

    def names(self) -> set[str]:
        return {self.id}

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        other = names(self.id)
        return other if other is not None else self


class Neg(Expr):
    """-x (or +x, kept as written)."""

    __slots__ = ("x", "plus")
    precedence = 12

    def __init__(self, x: Expr, plus: bool = False) -> None:
        self.x = x
        self.plus = plus

    def value(self, scope: Scope, source: str = "") -> int:
        v = self.x.value(scope, source)
        return v if self.plus else -v

    def text(self) -> str:
        inner = self.x.text()
        return ("+" if self.plus else "-") + (f"({inner})" if self.x.precedence < self.precedence
                                              else inner)

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.UnaryOp(ast.UAdd() if self.plus else ast.USub(), self.x._ast(names))

    def names(self) -> set[str]:
        return self.x.names()

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return Neg(self.x.substitute(names), self.plus)


def _floordiv(a: int, b: int) -> int:
    return a // b


#: op → (Python AST class, function, precedence, additive)
_BINARY: dict[str, tuple[type, Callable[[int, int], int], int, bool]] = {
    "+": (ast.Add, operator.add, 10, True), "-": (ast.Sub, operator.sub, 10, True),
    "*": (ast.Mult, operator.mul, 11, False), "//": (ast.FloorDiv, _floordiv, 11, False),
    "%": (ast.Mod, operator.mod, 11, False), "/": (ast.FloorDiv, _floordiv, 11, False),
}


class Bin(Expr):
    """a OP b for OP in + - * / // %; `/` must divide exactly (Python writes it `//`)."""

    __slots__ = ("op", "a", "b")

    def __init__(self, op: str, a: Expr, b: Expr) -> None:
        self.op = op
        self.a = a
        self.b = b

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return _BINARY[self.op][2]

    def value(self, scope: Scope, source: str = "") -> int:
        a, b = self.a.value(scope, source), self.b.value(scope, source)
        if self.op == "/":
            if b == 0 or a % b:
                raise EvalError(f"`{{{source}}}` is not a whole number ({a} / {b})",
                                "use `//` to round down")
            return a // b
        if self.op in ("//", "%") and b == 0:
            raise EvalError(f"division by zero in `{{{source}}}`")
        result = _BINARY[self.op][1](a, b)
        if abs(result) > MAX_VALUE:
            raise EvalError(f"`{{{source}}}` grows past {MAX_VALUE:.0e}, more than any size "
                            f"could be")
        return result

    def text(self) -> str:
        return _arith_text(self, _mixed(self))

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.BinOp(self.a._ast(names), _BINARY[self.op][0](), self.b._ast(names))

    def names(self) -> set[str]:
        return self.a.names() | self.b.names()

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return Bin(self.op, self.a.substitute(names), self.b.substitute(names))


def _chain(e: Expr) -> list[Bin]:
    """The binary operations of one arithmetic chain (not crossing parentheses)."""
    if not isinstance(e, Bin):
        return []
    out = [e]
    for side in (e.a, e.b):
        if isinstance(side, Bin) and side.precedence >= e.precedence and not (
                side is e.b and side.precedence == e.precedence):
            out += _chain(side)
    return out


def _mixed(e: Bin) -> bool:
    """Whether a chain mixes additive and multiplicative operators (`c//4 + 7`)."""
    return len({_BINARY[b.op][3] for b in _chain(e)}) > 1


def _arith_text(e: Expr, mixed: bool) -> str:
    """A chain's text: operators unspaced, but for `+`/`-` in a chain that mixes in `*` or
    `//` (`{n-1}`, `{4*c}`, `{(c//4 + 7)//8*8}`), as gofmt spaces Go's expressions."""
    if not isinstance(e, Bin):
        return e.text()
    prec = e.precedence

    def side(x: Expr, right: bool) -> str:
        needs = x.precedence < prec or (right and x.precedence == prec and isinstance(x, Bin))
        if needs:
            return f"({x.text()})"
        return _arith_text(x, mixed) if isinstance(x, Bin) else x.text()

    op = f" {e.op} " if mixed and _BINARY[e.op][3] else e.op
    return f"{side(e.a, False)}{op}{side(e.b, True)}"


_COMPARE: dict[str, tuple[type, Callable[[int, int], bool]]] = {
    "==": (ast.Eq, operator.eq), "!=": (ast.NotEq, operator.ne), "<": (ast.Lt, operator.lt),
    "<=": (ast.LtE, operator.le), ">": (ast.Gt, operator.gt), ">=": (ast.GtE, operator.ge),
}


class Compare(Expr):
    """a < b <= c ...: 1 when every comparison holds, else 0 (all operands are evaluated)."""

    __slots__ = ("first", "rest")
    precedence = 6

    def __init__(self, first: Expr, rest: tuple[tuple[str, Expr], ...]) -> None:
        self.first = first
        self.rest = rest

    def value(self, scope: Scope, source: str = "") -> int:
        left, result = self.first.value(scope, source), 1
        for op, right_expr in self.rest:
            right = right_expr.value(scope, source)
            result &= int(_COMPARE[op][1](left, right))
            left = right
        return result

    def text(self) -> str:
        def side(x: Expr) -> str:
            return f"({x.text()})" if x.precedence <= self.precedence else x.text()
        return side(self.first) + "".join(f" {op} {side(x)}" for op, x in self.rest)

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.Compare(self.first._ast(names), [_COMPARE[op][0]() for op, _ in self.rest],
                           [x._ast(names) for _, x in self.rest])

    def names(self) -> set[str]:
        return self.first.names().union(*(x.names() for _, x in self.rest))

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return Compare(self.first.substitute(names),
                       tuple((op, x.substitute(names)) for op, x in self.rest))


class IfElse(Expr):
    """`A if CONDITION else B` (only the chosen side is evaluated)."""

    __slots__ = ("cond", "yes", "no")
    precedence = 2

    def __init__(self, cond: Expr, yes: Expr, no: Expr) -> None:
        self.cond = cond
        self.yes = yes
        self.no = no

    def value(self, scope: Scope, source: str = "") -> int:
        return self.yes.value(scope, source) if self.cond.value(scope, source) \
            else self.no.value(scope, source)

    def text(self) -> str:
        def side(x: Expr) -> str:
            return f"({x.text()})" if x.precedence <= self.precedence else x.text()
        return f"{side(self.yes)} if {side(self.cond)} else {self.no.text()}"

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.IfExp(self.cond._ast(names), self.yes._ast(names), self.no._ast(names))

    def names(self) -> set[str]:
        return self.cond.names() | self.yes.names() | self.no.names()

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return IfElse(self.cond.substitute(names), self.yes.substitute(names),
                      self.no.substitute(names))


class Logic(Expr):
    """`a and b`, `a or b` (1 or 0), for conditions the code generator writes."""

    __slots__ = ("op", "items")

    def __init__(self, op: str, items: tuple[Expr, ...]) -> None:
        self.op = op
        self.items = items

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return 4 if self.op == "and" else 3

    def value(self, scope: Scope, source: str = "") -> int:
        values = (x.value(scope, source) for x in self.items)
        return int(all(values) if self.op == "and" else any(values))

    def text(self) -> str:
        return f" {self.op} ".join(f"({x.text()})" if x.precedence <= self.precedence
                                   else x.text() for x in self.items)

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.BoolOp(ast.And() if self.op == "and" else ast.Or(),
                          [x._ast(names) for x in self.items])

    def names(self) -> set[str]:
        return set().union(*(x.names() for x in self.items))

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return Logic(self.op, tuple(x.substitute(names) for x in self.items))


class Not(Expr):
    """`not x` (1 or 0), for conditions the code generator writes."""

    __slots__ = ("x",)
    precedence = 5

    def __init__(self, x: Expr) -> None:
        self.x = x

    def value(self, scope: Scope, source: str = "") -> int:
        return int(not self.x.value(scope, source))

    def text(self) -> str:
        inner = self.x.text()
        return f"not ({inner})" if self.x.precedence < self.precedence else f"not {inner}"

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        return ast.UnaryOp(ast.Not(), self.x._ast(names))

    def names(self) -> set[str]:
        return self.x.names()

    def substitute(self, names: Callable[[str], Expr | None]) -> Expr:
        return Not(self.x.substitute(names))


class Bad(Expr):
    """What cannot be evaluated (not an expression, a float, a call...): an error when used."""

    __slots__ = ("message", "hint", "shown")

    def __init__(self, message: str, hint: str | None = None, shown: str = "") -> None:
        self.message = message
        self.hint = hint
        self.shown = shown

    def value(self, scope: Scope, source: str = "") -> int:
        raise EvalError(self.message, self.hint)

    def text(self) -> str:
        return self.shown

    def _ast(self, names: Callable[[str], Expr | None]) -> ast.expr:
        raise ValueError(self.message)


# ---- parsing ------------------------------------------------------------------------

def parse(source: str) -> Expr:
    """The expression inside `{ }` (a `$` before a name is allowed there too)."""
    if len(source) > MAX_EXPRESSION:   # before parsing it: no RecursionError, no slow parse
        return Bad(f"an expression of {len(source):,} characters is longer than the "
                   f"{MAX_EXPRESSION} netspec reads",
                   "compute the value in parts, or write the number", source)
    try:
        tree = ast.parse(source.replace("$", "").strip(), mode="eval")
    except SyntaxError:
        return Bad(f"`{{{source}}}` is not an expression", shown=source)
    return _convert(tree.body, source)


_AST_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
               ast.Div: "/"}
_AST_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
                ast.GtE: ">="}


def _convert(node: ast.AST, source: str) -> Expr:
    """Python's parse of an expression as netspec's Expr (unsupported parts as Bad)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Num(node.value)
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return Neg(_convert(node.operand, source), isinstance(node.op, ast.UAdd))
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_BINARY:
        return Bin(_AST_BINARY[type(node.op)], _convert(node.left, source),
                   _convert(node.right, source))
    if isinstance(node, ast.IfExp):
        return IfElse(_convert(node.test, source), _convert(node.body, source),
                      _convert(node.orelse, source))
    if isinstance(node, ast.Compare) and all(type(op) in _AST_COMPARE for op in node.ops):
        return Compare(_convert(node.left, source),
                       tuple((_AST_COMPARE[type(op)], _convert(x, source))
                             for op, x in zip(node.ops, node.comparators)))
    return Bad(f"cannot evaluate `{source}`: {SUPPORTED}", shown=ast.unparse(node))


# ---- for the code generator ----------------------------------------------------------

def const(e: Expr) -> int | None:
    """The number `e` always is, or None when it reads a name (or cannot be evaluated)."""
    if e.names():
        return None
    try:
        return e.value(Scope())
    except (EvalError, ValueError):
        return None
