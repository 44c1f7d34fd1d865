"""Named values in generated PyTorch code: variables of `forward`.

A value a join or `from` reads (`concat(y1, y2, x4)`, `from x`) is kept in a variable
named as the spec names it, right after the statement that gives it (`y1 = x`); a
join is one expression of those variables (`x = torch.cat([y1, y2, x4], 1)`, `x = a +
b`), and `from a` is `x = a`. Only names some join or `from` of the class reads get a
variable. A labelled `{ … }` group holding joins is written as a namespace
(`self.tree1 = nn.Module()`, its modules `self.tree1.conv1`), its statements in the
class's own `forward`, so that its values are variables there too.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ...kinds import Add, Concat, Multiply, registry
from ...language.names import Names
from ...syntax import expr as E
from ...syntax.tree import (
    Assign,
    Aux,
    From,
    Gate,
    Group,
    Join,
    Labeled,
    Merge,
    Node,
    Repeat,
    Residual,
)
from ...syntax.words import LABEL_PARAM
from .symbols import Lin, Unsupported

if TYPE_CHECKING:
    from .writer import Writer

#: Names `forward` uses for itself, which a value's variable must not take (the other
#: variables it makes, `identity`, `y2`, …, are `Writer.fresh`'s, which avoids the values').
_TAKEN = ("x", "self", "torch", "nn", "image", "branch")


def variable(name: str) -> str:
    """The Python variable of the value `name`."""
    ident = re.sub(r"\W", "_", name)
    if not ident.isidentifier() or keyword.iskeyword(ident) or ident in _TAKEN:
        ident += "_"
    return ident


def _inner(node: Node) -> list[Node]:
    if isinstance(node, (Labeled, Assign, Repeat)):
        return [node.item]
    if isinstance(node, Group):
        return node.body
    if isinstance(node, Residual):
        return [node.body] + ([node.shortcut] if node.shortcut is not None else [])
    if isinstance(node, Merge):
        return node.branches
    if isinstance(node, (Gate, Aux)):
        return [node.body]
    return []


def _walk(nodes: list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        yield from _walk(_inner(node))


def read_names(nodes: list[Node]) -> set[str]:
    """The names (as written) that the joins and `from`s among `nodes` read."""
    out: set[str] = set()
    for node in _walk(nodes):
        if isinstance(node, Join):
            out.update(r.text for r in node.refs)
        elif isinstance(node, From):
            out.add(node.ref.text)
    return out


def reads_values(nodes: list[Node]) -> bool:
    """Whether a join of named values or a `from` is among `nodes`."""
    return any(isinstance(n, (Join, From)) for n in _walk(nodes))


class Values:
    """The named-value writers of `Writer` (see the module's docstring)."""

    def value_name(self: Writer, text: str) -> str:
        """A name with its `$params` filled in from the unrolled repeat or call."""
        if "$" not in text:
            return text
        parts = LABEL_PARAM.split(text)
        out = []
        for n, part in enumerate(parts):
            value = self.env.get(part) if n % 2 else None
            if n % 2 and not isinstance(value, E.Num):
                raise Unsupported(f"the value name `{text}` inside a loop (name it without "
                                  f"`$params`)")
            out.append(str(value.n) if n % 2 else part)   # type: ignore[union-attr]
        return "".join(out)

    def name_value(self: Writer, text: str, var: str = "x") -> None:
        """The value flowing (held in `var`) is called `text`: a variable, if it is read."""
        any_param = any("$" in w for w in self.wanted)   # which names it reads: known later
        if "$" in text:
            try:
                name = self.value_name(text)
            except Unsupported:
                if any_param:
                    raise
                return   # `block$i-$j:` in a loop, a name nothing reads
        else:
            name = text
        if name not in self.wanted and not any_param:
            return
        if not self.explicit:
            raise Unsupported(f"the value `{name}` read by a join, inside a `[ ]` group or a "
                              f"loop (put it in a block)")
        ident = variable(name)
        if var != ident:
            self.fline(f"{ident} = {var}")
        cur = self.cur
        if "ch" in cur.names():   # `ch` changes as the constructor goes on: keep this one
            cur = self.local(f"c_{ident}", cur)
        self.named[name] = (ident, cur, self.vector)

    def _read(self: Writer, text: str) -> tuple[str, E.Expr, bool]:
        name = self.value_name(text)
        if name not in self.named:
            raise Unsupported(f"the value `{name}` here (name it in this block)")
        return self.named[name]

    def join(self: Writer, node: Join, names: Names[Lin]) -> None:
        """`x = torch.cat([a, b], 1)`, `x = a + b`, `x = a * b`."""
        if not self.explicit:
            raise Unsupported("a join of named values inside a `[ ]` group or a loop "
                              "(put it in a block)")
        read = [self._read(r.text) for r in node.refs]
        kind = registry.BY_MERGE_STATEMENT[node.op]
        variables = [var for var, _, _ in read]
        if kind is Concat:
            self.fline(f"x = torch.cat([{', '.join(variables)}], 1)")
            total = read[0][1]
            for _, c, _ in read[1:]:
                total = E.Bin("+", total, c)
            self.cur = total
        elif kind in (Add, Multiply):   # the first value's channels (mul's second: 1×1×C)
            self.fline(f"x = {(' + ' if kind is Add else ' * ').join(variables)}")
            self.cur = read[0][1]
        else:
            raise Unsupported(f"`{node.op}(…)`")
        self.vector = read[0][2]
        names.take(kind.kind)

    def from_value(self: Writer, node: From) -> None:
        """`x = a`: the statements after it read `a`."""
        if not self.explicit:
            raise Unsupported("`from` inside a `[ ]` group or a loop (put it in a block)")
        var, self.cur, self.vector = self._read(node.ref.text)
        self.fline(f"x = {var}")

    def namespace(self: Writer, node: Group, label: str, target: str) -> None:
        """A named group with joins, or naming a value read outside it: an empty module
        holding its modules (numbered in a `[ … ]`), its statements written into this
        forward."""
        ref = self.register(target, label, "nn.Module()")
        self.body(node.body, Names("", node.indexed, Lin(), Lin(1)), ref)
