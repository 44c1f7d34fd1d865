"""Step 2b of writing a spec: the names of the values that joins and `from`s read.

A value read by name (`add(y1, x2)`, `from x`) is called by the label of the
statement that gives it where it has one (`y1: relu`, `project: [ … ]`), or else
by a tap, `x2 = {}`, where it starts to flow: right after the statement that gives
it, or first in the group or branch it enters when every read of it is inside that
(so that the group can still become a block). The names are then checked as the
builder binds them (a name given again is the latest value), and one that would read
another value is made unique.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...language.grammar import grammar_keywords
from .naming import CatS, FromS, GateS, GroupS, JoinS, LayerS, ResS, TapS

#: The value of the network's input: the builder names it `input`.
INPUT = "input"


def _label(node: Any) -> str | None:
    """The label that names a statement's value (not a sequence number)."""
    label = node.body.label if isinstance(node, GateS) else getattr(node, "label", None)
    return label if label and not label.isdigit() else None


def _bodies(node: Any, flow: str) -> Iterator[tuple[list[Any], str, Any]]:
    """Each body inside a statement with the value it starts from, and the branch or
    shortcut whose label names its output, if any (a group's label names the group's
    statement)."""
    if isinstance(node, GroupS):
        yield node.body, flow, None
    elif isinstance(node, ResS):
        yield node.body, flow, None
        if node.shortcut is not None:
            yield node.shortcut.body, flow, node.shortcut
    elif isinstance(node, CatS):
        for i, b in enumerate(node.branches):
            yield b.body, node.chunks[i].output if node.chunks else flow, b
    elif isinstance(node, GateS):
        yield node.body.body, flow, None


def _output(node: Any, flow: str, ends: dict[int, str]) -> str:
    """The value a statement gives (`ends`: what each of its bodies ended with)."""
    if isinstance(node, (LayerS, JoinS)):
        return node.layer.output
    if isinstance(node, FromS):
        return node.value
    if isinstance(node, TapS):
        return flow
    if isinstance(node, GroupS):
        return ends[id(node.body)]
    if isinstance(node, ResS):
        return node.add.output if node.add is not None else ends[id(node.body)]
    if isinstance(node, CatS):
        return node.concat.output
    return node.mul.output   # GateS


class _Walk:
    """One pass over the statements in the order the builder builds them."""

    def __init__(self, top: list[Any]) -> None:
        self.events: list[tuple[str, Any, Any]] = []   # ("bind", name, value) / ("read", …)
        #: value → where it starts to flow, innermost first: (body, index, statement)
        self.made: dict[str, list[tuple[list[Any], int, Any]]] = {}
        self.starts: dict[str, list[tuple[list[Any], Any]]] = {}  # value → bodies from it
        self.inside: dict[int, set[str]] = {}   # statement → values read within it
        self.groups: list[tuple[GroupS, str]] = []   # each group, the value flowing in
        self.body(top, INPUT, [])
        self.events.insert(0, ("bind", INPUT, INPUT))

    def body(self, body: list[Any], flow: str, outer: list[Any]) -> str:
        for k, node in enumerate(body):
            for value in ([node.value] if isinstance(node, FromS) else
                          node.layer.inputs if isinstance(node, JoinS) else []):
                self.events.append(("read", value, node))
                for stmt in outer:
                    self.inside.setdefault(id(stmt), set()).add(value)
            if isinstance(node, TapS):
                self.events.append(("bind", node, flow))
            ends: dict[int, str] = {}
            if isinstance(node, GroupS) and node.call is None:
                self.groups.append((node, flow))
            for inner, start, owner in _bodies(node, flow):
                self.starts.setdefault(start, []).append((inner, node))
                ends[id(inner)] = self.body(inner, start, [*outer, node])
                if owner is not None and _label(owner):
                    self.events.append(("bind", _label(owner), ends[id(inner)]))
            before, flow = flow, _output(node, flow, ends)
            if flow != before and not isinstance(node, FromS):
                self.made.setdefault(flow, []).append((body, k, node))
            if _label(node):
                self.events.append(("bind", _label(node), flow))
        return flow


def _tap_name(value: str, layers: dict[str, Any], taken: set[str]) -> str:
    """A name for a value from its layer's own name (`y1`, `base_2`), or its kind where it
    has none (torch's functions: `relu`), not taken."""
    layer = layers.get(value)
    parts = [value] if layer is None else [*layer.path, layer.local] if layer.local \
        else [layer.kind]
    base = parts[-1] if not parts[-1].isdigit() or len(parts) == 1 else "_".join(parts[-2:])
    base = re.sub(r"\W", "_", base).strip("_") or "v"
    if base[0].isdigit():
        base = "v" + base
    if base in grammar_keywords():
        base += "_out"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


@dataclass
class ValueNames:
    """The names of the values read by name: each value's name, the statement that
    names it (a labelled statement or a tap; None for the network's input), and the
    statements that read it."""

    names: dict[str, str] = field(default_factory=dict)
    definer: dict[str, Any] = field(default_factory=dict)
    readers: dict[str, list[Any]] = field(default_factory=dict)

    def self_contained(self, group: Any) -> bool:
        """Whether `group` can become a block: the values it reads by name are named
        inside it, and none named inside it is read outside (a block instance's names
        are its own)."""
        inside = _statements(group)
        for value, readers in self.readers.items():
            defined = id(self.definer.get(value)) in inside
            read_in = [id(r) in inside for r in readers]
            if any(read_in) and not defined or defined and not all(read_in):
                return False
        return True


def name_values(top: list[Any], layers: list[Any]) -> ValueNames:
    """Give every value a join or `from` reads a name, inserting the taps it needs into
    the statement tree and writing the names into the joins and `from`s."""
    walk = _Walk(top)
    read = {value for kind, value, _ in walk.events if kind == "read"}
    if not read:
        return ValueNames()
    by_out = {layer.output: layer for layer in layers}
    names: dict[str, str] = {}
    taps: dict[str, TapS] = {}
    first = {}
    for n, (kind, value, _) in enumerate(walk.events):
        if kind == "read":
            first.setdefault(value, n)
    for value in sorted(read, key=first.__getitem__):
        names[value] = _place(value, walk, by_out, names, taps)
    for _ in range(len(read) + 1):   # names the builder would bind to another value
        again = _Walk(top)
        wrong = _misread(again, names, taps)
        if not wrong:
            return _result(again, names, taps)
        for value in wrong:
            taken = {*names.values(), *_labels(top)}
            if value in taps:
                taps[value].name = names[value] = _tap_name(value, by_out, taken)
            else:
                names[value] = _place(value, walk, by_out, names, taps, force_tap=True)
    raise ValueError("value names that the builder would read otherwise")


def _result(walk: _Walk, names: dict[str, str], taps: dict[str, TapS]) -> ValueNames:
    """The names, written into the joins and `from`s that read them."""
    out = ValueNames(names)
    for kind, value, node in walk.events:
        if kind != "read":
            continue
        out.readers.setdefault(value, []).append(node)
        if isinstance(node, FromS):
            node.name = names[value]
        else:
            node.names = [names[i] for i in node.layer.inputs]
    for value, name in names.items():
        made = [m[2] for m in walk.made.get(value, []) if _label(m[2]) == name]
        out.definer[value] = taps[value] if value in taps else made[0] if made else None
    return out


def _place(value: str, walk: _Walk, layers: dict[str, Any], names: dict[str, str],
           taps: dict[str, TapS], force_tap: bool = False) -> str:
    """The name for `value`: the label of the statement that gives it, or a new tap."""
    if value == INPUT and not force_tap:
        return INPUT
    made = walk.made.get(value, [])
    taken = set(names.values()) if force_tap else set()
    readers = [n for kind, v, n in walk.events if kind == "read" and v == value]
    makers = {i for _, _, stmt in made for i in _statements(stmt)}
    entered = [group for group, entry in walk.groups   # groups it flows into, read only there
               if entry == value and not makers & _statements(group) and
               not isinstance(group.body[0] if group.body else None, FromS) and
               len(readers) == len(list(_reads_within(group, value, walk)))]
    if entered:   # the innermost: a group that can become a block keeps it to itself
        tap = taps[value] = TapS(value, "x" if "x" not in taken else
                                 _tap_name(value, layers, taken))
        entered[-1].body.insert(0, tap)
        return tap.name
    labelled = next((m for m in made if _label(m[2])), None)
    if labelled is not None and not force_tap:
        return _label(labelled[2])
    tap = taps[value] = TapS(value, _tap_name(value, layers, taken))
    if made:
        body, _, stmt = made[0]
        body.insert(next(i for i, node in enumerate(body) if node is stmt) + 1, tap)
    else:   # the start of a branch (a split's run of channels) or of the network
        body, _ = walk.starts[value][0]
        body.insert(0, tap)
    return tap.name


def _reads_within(stmt: Any, value: str, walk: _Walk) -> Iterator[Any]:
    """The reads of `value` inside `stmt`."""
    if value in walk.inside.get(id(stmt), set()):
        inside = _statements(stmt)
        yield from (n for kind, v, n in walk.events
                    if kind == "read" and v == value and id(n) in inside)


def _statements(stmt: Any) -> set[int]:
    out = {id(stmt)}
    for body, _, _ in _bodies(stmt, ""):
        for node in body:
            out |= _statements(node)
    return out


def _labels(top: list[Any]) -> set[str]:
    out: set[str] = set()
    for node in top:
        if _label(node):
            out.add(_label(node))
        for body, _, owner in _bodies(node, ""):
            out |= _labels(body)
    return out


def _misread(walk: _Walk, names: dict[str, str], taps: dict[str, TapS]) -> list[str]:
    """The values a read would find another value under their name (the builder binds
    the latest statement that gives the name)."""
    bound: dict[str, str] = {}
    wrong: list[str] = []
    for kind, what, value in walk.events:
        if kind == "bind":
            bound[what.name if isinstance(what, TapS) else what] = value
        elif bound.get(names[what]) != what and what not in wrong:   # a read
            wrong.append(what)
    return wrong
