"""Named values: labels and `name = …` name values, joins and `from` read them.

Series–parallel forms (`residual`, `concat { branch … }`) join paths that branch from
one value. A network that joins values that do not (Res2Net's hierarchical split,
DLA's tree roots, VoVNet's one-shot aggregation) names the values and reads them:

    x = {}                  the value flowing in is `x`
    stem: conv 3x3 x32      a label names its statement's value too
    concat(x, stem)         a merge of named values; the flow goes on from it
    from x                  the flow goes on from `x`

A name is visible after its statement to the end of its block body (or of the spec),
in everything nested there, but not inside the blocks called there: each block
instance has its own names (`ValueScope`). A name given again is the latest value.
A join can only read values already computed, so the graph has no cycle.

A mixin of the Builder (builder.py), like joins.py: it reads `current`, the
sequence being built into and the reporter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..ir import tree as ir
from ..kinds import registry
from ..kinds.base import Layer
from ..kinds.merges import Merge
from ..source.diagnostics import SpecError, did_you_mean
from ..source.pos import Pos
from ..syntax import tree as st
from ..syntax.words import Word
from .names import Names
from .values import Unresolved, resolve_label

if TYPE_CHECKING:
    from .builder import Builder


class ValueScope:
    """The named values of the spec's top level or of one block instance.

    `body` is the statements the scope's names are written in (to tell a name defined
    later from an unknown one); `where` says what the scope is, for messages.
    """

    def __init__(self, body: list[st.Node], where: str) -> None:
        self.body = body
        self.where = where
        self.values: dict[str, Layer | None] = {}   # None: its statement failed (reported)
        self.lines: dict[str, int] = {}             # the line each name was given on


def definitions(nodes: list[st.Node]) -> Iterator[Word]:
    """Every name a body gives a value (labels that are not numbers, `name =`), its
    nested groups and branches included, in the order written."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if isinstance(node, st.Labeled) and not node.label.text.isdigit():
            yield node.label
        elif isinstance(node, st.Assign):
            yield node.name
        inner: list[st.Node] = []
        if isinstance(node, (st.Labeled, st.Assign, st.Repeat)):
            inner = [node.item]
        elif isinstance(node, st.Group):
            inner = node.body
        elif isinstance(node, st.Residual):
            inner = [node.body] + ([node.shortcut] if node.shortcut is not None else [])
        elif isinstance(node, st.Merge):
            inner = node.branches
        elif isinstance(node, (st.Gate, st.Aux)):
            inner = [node.body]
        stack.extend(reversed(inner))


class NamedValues:
    """Naming values and reading them (see the module's docstring)."""

    # ---- scopes --------------------------------------------------------------------
    def _open_values(self: Builder, body: list[st.Node], where: str) -> None:
        """Enter the scope of a block instance (or of the spec, at the top level)."""
        self.value_scopes.append(ValueScope(body, where))

    def _close_values(self: Builder) -> None:
        """Leave a block instance: its names stay known, to explain why they are not visible."""
        scope = self.value_scopes.pop()
        for name, line in scope.lines.items():
            self.hidden.setdefault(name, (scope.where, line))

    def _name_value(self: Builder, name: str, pos: Pos) -> None:
        """`name` is now the value flowing (None if its statement failed)."""
        scope = self.value_scopes[-1]
        scope.values[name] = self.current
        scope.lines[name] = pos.line

    def _name_text(self: Builder, word: Word, env: dict[str, int]) -> str | None:
        """A name with its `$params` filled in (None after reporting one unknown)."""
        try:
            return resolve_label(word, self._values(env), self.rep).text
        except Unresolved:
            return None

    # ---- statements ----------------------------------------------------------------
    def _assign(self: Builder, node: st.Assign, scope: Names[int], env: dict[str, int]) -> None:
        """`name = item`: build the item, then call its value `name`."""
        name = self._name_text(node.name, env)
        self.statement(node.item, scope, env)
        if name is not None:
            self._name_value(name, node.name.pos)

    def _leave(self: Builder, reads: list[Layer | None], node: st.Node) -> None:
        """The flow goes on from `reads` (a join's, or `from`'s): the value flowing until
        now is left behind unless one of them is it (told if nothing reads it later)."""
        if self.current is not None and all(r is not self.current for r in reads):
            what = f"`from {node.ref.text}`" if isinstance(node, st.From) else "the join"
            self.left[id(self.current)] = f"{what} on line {node.pos.line} reads other values"

    def unread_warnings(self: Builder) -> None:
        """Warn of each value nothing reads (not the output, nor an aux head's): the
        flow went on from another value after it."""
        read = {id(i) for layer in self.layers for i in layer.inputs}
        for layer in self.layers[:-1]:
            if id(layer) not in read and not layer.aux and layer.inputs:
                why = self.left.get(id(layer))
                self.rep.warning(layer.pos, "unread-value",
                                 f"the output of `{layer.name}` is never read"
                                 + (f": {why}" if why else ""),
                                 hint="read it in a join (`concat(…)`, `add(…)`), or remove it")

    def _from(self: Builder, node: st.From, env: dict[str, int]) -> None:
        """`from name`: the next statement reads the named value."""
        found = self._read_value(node.ref, env)
        self._leave([found[1] if found is not None else None], node)
        self.current = found[1] if found is not None else None
        if found is not None and found[1] is not None:
            self._seq.items.append(ir.From(found[0], found[1], syntax=node, env=env))

    def _join(self: Builder, node: st.Join, scope: Names[int], env: dict[str, int],
              label: str | None, label_pos: Pos | None) -> None:
        """`concat(a, b)`, `add(a, b)`, `mul(a, b)`: the merge of named values."""
        kind = registry.BY_MERGE_STATEMENT[node.op]
        found = [self._read_value(ref, env) for ref in node.refs]
        self._leave([f[1] if f is not None else None for f in found], node)
        self.current = None
        least, most = kind.branch_counts
        if most is not None and len(node.refs) != most:
            self.rep.error(node.pos, f"`{node.op}` reads exactly {most} values, "
                                     f"not {len(node.refs)}", SpecError,
                           hint=f"{node.op} them two at a time: `s = {node.op}(a, b)`, then "
                                f"`{node.op}(s, c)`" if len(node.refs) > most else
                           f"name the other value too: `{node.op}({node.refs[0].text}, b)`")
            return
        if len(node.refs) == 1:
            self.rep.error(node.pos, f"`{node.op}` of one value is that value", SpecError,
                           hint=f"to go on from it, write `from {node.refs[0].text}`")
            return
        if any(f is None or f[1] is None for f in found):
            return   # reported where it was read, or where its statement failed
        reads = [(name, value) for name, value in found]   # type: ignore[misc]
        merge: Merge = kind.of_branches(node.pos, node.op)   # type: ignore[attr-defined]
        merge.reads = tuple(name for name, _ in reads)
        merge.text = f"{node.op}({', '.join(merge.reads)})"
        merge.syntax, merge.env = node, env
        if label is not None:
            merge.name, merge.name_pos = scope.full(label), label_pos
        else:
            merge.name = scope.name(merge.kind)
        built = ir.Join(node.op, reads, syntax=node, env=env)
        self.add(merge, [value for _, value in reads])
        self._seq.items[-1] = built   # the merge belongs to its join node
        built.merge = merge

    # ---- reading a name --------------------------------------------------------------
    def _read_value(self: Builder, ref: Word, env: dict[str, int]
                    ) -> tuple[str, Layer | None] | None:
        """(name, value) of a name a join or `from` reads; None after reporting why not.
        The value is None when the statement that gave it failed (reported there)."""
        name = self._name_text(ref, env)
        if name is None:
            return None
        scope = self.value_scopes[-1]
        if name in scope.values:
            value = scope.values[name]
            if value is not None and value.aux and not self._in_aux:
                self.rep.error(ref.pos, f"`{name}` is a value of an `aux` head, which "
                                        f"inference does not compute", SpecError,
                               hint="a join reads values of the main path")
                return None
            return name, value
        self._unknown_value(ref, name, scope)
        return None

    def _unknown_value(self: Builder, ref: Word, name: str, scope: ValueScope) -> None:
        """Say why `name` has no value here: given later, in another scope, or unknown."""
        later = next((w for w in definitions(scope.body)
                      if w.text in (name, ref.text) and
                      (w.pos.line, w.pos.column) > (ref.pos.line, ref.pos.column)), None)
        if later is not None:
            self.rep.error(ref.pos, f"`{name}` is read before it is computed: it is given on "
                                    f"line {later.pos.line}", SpecError,
                           hint="a join reads only values computed before it (so a network "
                                "has no cycle): move the join after that line")
            return
        outer = next((s for s in reversed(self.value_scopes[:-1]) if name in s.values), None)
        if outer is not None:
            self.rep.error(ref.pos, f"`{name}` is a value of {outer.where} (line "
                                    f"{outer.lines[name]}), which this block does not see",
                           SpecError, hint="a block reads only the value it is called on and the values "
                                "it names itself: name what you need inside the block, or "
                                "write the join outside it")
            return
        if name in self.hidden:
            where, line = self.hidden[name]
            self.rep.error(ref.pos, f"`{name}` is a value inside {where} (line {line}), "
                                    f"which is not visible here", SpecError,
                           hint="a block instance's values are its own: label the instance "
                                "(`b1: block(…)`) and read its output by that name")
            return
        visible = list(scope.values)
        layer = next((lay for lay in reversed(self.layers)
                      if lay.name.rsplit(".", 1)[-1] == name), None)
        self.rep.error(ref.pos, f"unknown value `{name}`", SpecError,
                       hint=did_you_mean(name, visible) or
                       (f"`{layer.name}` is a layer's own name (line {layer.line}), not a "
                        f"value's: label it (`{name}: …`) to read its output"
                        if layer is not None else
                        f"name a value before reading it: `{name}: conv …` or "
                        f"`{name} = {{ … }}`"))
