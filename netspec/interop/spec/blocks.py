"""Step 3 of writing a spec: blocks and repeats.

Groups with the same statements up to numbers become one block whose differing
numbers are parameters (`x$c`, `s$s`), called where the groups were; a group that
must sit at a numbered position under a name-keyed scope is always a block (only a
call takes a position there), and so is a labelled group making a join of its own
(`export --torch` writes a block as a class). A residual with an identity shortcut
and one with a `project` shortcut unify, as in ResNet, and groups with an identity
residual unify with groups that change the shape as `residual? { … }`, as in
MobileNetV2. Equal consecutive calls become `repeat N …`.

Groups are compared as token lists (`tokens`): their statements' words and numbers,
markers for the structure, and separators.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...kinds.registry import by_kind
from ...language.grammar import grammar_keywords
from ..onnx.reader import Num
from .naming import (
    BlockS, CallS, CatS, FromS, GateS, GroupS, JoinS, LayerS, RepeatS, ResS, TapS, build_order,
)
from .values import ValueNames


SC_NONE = ("sc-none",)
SC_BEGIN, SC_END = ("sc-begin",), ("sc-end",)


SEP = ("sep",)
JOIN = ("join",)   # a separator that stays on the line when the group is written over lines
#: Markers of the structure (tuples, never equal to a word of a statement).
_REPEAT, _BRANCH, _GATE, _PROJECT, _SHORTCUT = ("rep",), ("br",), ("gt",), ("proj",), ("sc",)


def joins_line(node: Any) -> bool:
    """A layer that reads as part of the line before it: `conv 3x3 x64; bn; relu`."""
    return isinstance(node, LayerS) and by_kind(node.layer.kind).joins_line


def _separator(node: Any) -> tuple[str]:
    return JOIN if joins_line(node) else SEP


def stmt_tokens(node: Any) -> list[Any]:
    """A statement as tokens: strings, Nums (numbers), calls, markers, brackets and separators."""
    if isinstance(node, LayerS):
        return ([f"{node.label}:"] if node.label else []) + list(node.layer.words)
    if isinstance(node, GroupS):
        if node.call is not None:
            return _call_tokens(node.call)
        return ([f"{node.label}:"] if node.label else []) + _braces(node.body, node.indexed)
    if isinstance(node, CallS):
        return _call_tokens(node)
    if isinstance(node, RepeatS):
        return [_REPEAT, Num("", node.count, None, "n"), *stmt_tokens(node.item)]
    if isinstance(node, ResS):
        out = [("res", node.optional), *_braces(node.body, False)]
        if node.kind == "project":
            out += [SC_BEGIN, _PROJECT, *stmt_tokens(node.shortcut), SC_END]
        elif node.kind == "shortcut":
            out += [_SHORTCUT, *stmt_tokens(node.shortcut)]
        else:
            out.append(SC_NONE)
        return out
    if isinstance(node, GateS):
        label = [f"{node.body.label}:"] if node.body.label else []
        return [*label, _GATE, *_braces(node.body.body, False)]
    if isinstance(node, JoinS):
        return ([f"{node.label}:"] if node.label else []) + \
            [("join", node.layer.kind, tuple(node.names))]
    if isinstance(node, FromS):
        return [("from", node.name)]
    if isinstance(node, TapS):
        return [("tap", node.name)]
    if isinstance(node, CatS):
        out = ([f"{node.label}:"] if node.label else []) + \
            [("merge", bool(node.chunks), node.concat.kind,
              node.chunks[0].runs if node.chunks else ()), "{"]
        for n, b in enumerate(node.branches):
            out += [*([SEP] if n else []), _BRANCH, *stmt_tokens(b)]
        return [*out, "}"]
    raise TypeError(node)


def _call_tokens(call: CallS) -> list[Any]:
    return ([f"{call.label}:"] if call.label else []) + [("call", call)]


def param_values(call: CallS) -> list[int]:
    values: dict[str, int] = {}
    for slot, value in zip(call.block.slots, call.values):
        if isinstance(slot, str) and value is not None:
            values.setdefault(slot, value)
    return [values.get(name, default) for name, default in call.block.params]


def _braces(body: list[Any], indexed: bool) -> list[Any]:
    out: list[Any] = ["[" if indexed else "{"]
    for n, stmt in enumerate(repeats(body)):
        out += [*([_separator(stmt)] if n else []), *stmt_tokens(stmt)]
    return [*out, "]" if indexed else "}"]


def repeats(body: list[Any]) -> list[Any]:
    """Runs of equal unlabelled calls or groups → `repeat N …`."""
    out: list[Any] = []
    for node in body:
        if out and _repeatable(node) and _same(out[-1], node):
            prev = out[-1]
            if isinstance(prev, RepeatS):
                prev.count += 1
            else:
                out[-1] = RepeatS(2, prev)
            continue
        out.append(node)
    return out


def _repeatable(node: Any) -> bool:
    if isinstance(node, GroupS):
        return node.call is not None and node.call.label is None or \
            node.call is None and node.label is None and node.indexed
    return False


def _same(prev: Any, node: Any) -> bool:
    item = prev.item if isinstance(prev, RepeatS) else prev
    return _repeatable(item) and _printed(stmt_tokens(item)) == _printed(stmt_tokens(node))


def _printed(tokens: list[Any]) -> list[Any]:
    """What of `tokens` is printed: numbers at their default are left out, and a call is
    its block and the values it is given."""
    out: list[Any] = []
    for t in tokens:
        if isinstance(t, Num):
            if t.value != t.default:
                out.append((t.prefix, t.value))
        elif isinstance(t, tuple) and t[0] == "call":
            out.append((t[1].block.name, tuple(param_values(t[1]))))
        else:
            out.append(t)
    return out


def _groups_post_order(body: list[Any]) -> list[GroupS]:
    out: list[GroupS] = []

    def walk(node: Any) -> None:
        if isinstance(node, GroupS):
            for child in node.body:
                walk(child)
            out.append(node)
        elif isinstance(node, ResS):
            for child in node.body:
                walk(child)
            if node.shortcut is not None:
                for child in node.shortcut.body:
                    walk(child)
        elif isinstance(node, CatS):
            for b in node.branches:
                for child in b.body:
                    walk(child)
        elif isinstance(node, GateS):
            for child in node.body.body:
                walk(child)
    for node in body:
        walk(node)
    return out


def template(group: GroupS) -> list[Any]:
    return _braces(group.body, group.indexed)


def _flat(tokens: list[Any]) -> list[Any]:
    """Tokens with every call argument spelled out as a Num, so it can become a parameter."""
    out: list[Any] = []
    for t in tokens:
        if isinstance(t, tuple) and t[0] == "call":
            call = t[1]
            out.append(("callname", call.block.name, tuple(p for p, _ in call.block.params)))
            out.extend(Num("", v, d, p) for (p, d), v in zip(call.block.params,
                                                             param_values(call)))
        else:
            out.append(t)
    return out


def _unify(a: list[Any], b: list[Any]) -> list[Any] | None:
    """Two flat templates as one, an identity shortcut matching a projection; else None."""
    out: list[Any] = []
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i], b[j]
        if x == SC_NONE and y == SC_BEGIN:
            end = b.index(SC_END, j)
            out.extend(b[j:end + 1])
            i, j = i + 1, end + 1
        elif y == SC_NONE and x == SC_BEGIN:
            end = a.index(SC_END, i)
            out.extend(a[i:end + 1])
            i, j = end + 1, j + 1
        elif isinstance(x, Num) and isinstance(y, Num):
            if (x.prefix, x.key) != (y.prefix, y.key):
                return None
            out.append(x)
            i, j = i + 1, j + 1
        elif x == y:
            out.append(x)
            i, j = i + 1, j + 1
        else:
            return None
    return out if i == len(a) and j == len(b) else None


def _values(instance: list[Any], template: list[Any]) -> list[int | None]:
    """The instance's number for each Num of the template (None where it has no shortcut)."""
    vals: list[int | None] = []
    i = 0
    skipping = False
    for t in template:
        if t == SC_BEGIN and instance[i] == SC_NONE:
            skipping = True
            i += 1
            continue
        if skipping:
            if isinstance(t, Num):
                vals.append(None)
            if t == SC_END:
                skipping = False
            continue
        if isinstance(t, Num):
            vals.append(instance[i].value)
        i += 1
    return vals


def make_blocks(top: list[Any], values: ValueNames | None = None) -> list[BlockS]:
    """Turn repeated (and position-bound) groups into block definitions and calls; never
    a group that reads a value named outside it, or names one read outside it."""
    blocks: list[BlockS] = []
    names: set[str] = set()
    pending = _groups_post_order(top)
    done: set[int] = set()
    while pending:
        ready = [g for g in pending if all(id(c) in done for c in _groups_post_order(g.body))]
        pending = [g for g in pending if all(g is not r for r in ready)]
        families: list[tuple[list[Any], list[GroupS]]] = []
        for g in ready:
            if values is not None and not values.self_contained(g):
                if g.must_block:
                    raise ValueError("a block would read a value named outside it")
                done.add(id(g))
                continue
            tpl = _flat(template(g))
            for n, (ftpl, members) in enumerate(families):
                merged = _unify(ftpl, tpl) or _unify_optional(ftpl, members, g)
                if merged is not None:
                    families[n] = (merged, [*members, g])
                    break
            else:
                families.append((tpl, [g]))
        for tpl, members in families:
            for g in members:
                done.add(id(g))
            if len(members) < 2 and not any(g.must_block or _holds_join(g) for g in members):
                continue
            blocks.append(_define(tpl, members, names))
        drop_labels(top, False)
    return blocks


def _holds_join(g: GroupS) -> bool:
    """A labelled or `[ ]` group with a residual, gate, concat, add or mul of its own: a
    block, as a hand-written spec has it (LR-ASPP's `classifier: lraspp_high(21)`), which
    `export --torch` writes as a class whose forward makes the join."""
    def joins(body: list[Any]) -> bool:
        return any(isinstance(n, (ResS, CatS, GateS)) or isinstance(n, GroupS) and
                   n.call is None and n.label is None and not n.indexed and joins(n.body)
                   for n in body)
    return (g.label is not None or g.indexed) and joins(g.body)


def _identity_residual(g: GroupS) -> bool:
    return len(g.body) == 1 and isinstance(g.body[0], ResS) and g.body[0].kind is None


def _changes_shape(g: GroupS) -> bool:
    order = build_order(g.body)
    return bool(order) and order[0].in_shape != order[-1].shape and \
        not any(isinstance(n, ResS) for n in g.body)


def _unify_optional(ftpl: list[Any], members: list[GroupS], g: GroupS) -> list[Any] | None:
    """MobileNetV2's case: a block with a skip where the shapes match and none where they
    differ is one block, `residual? { … }`. Rewrites the groups if their templates then unify."""
    if all(len(m.body) == 1 and isinstance(m.body[0], ResS) and m.body[0].optional
           for m in members):   # already a `residual?` family
        body = g.body
        if _identity_residual(g):
            g.body[0].optional = True
        elif _changes_shape(g):
            g.body = [ResS(g.body, None, None, None, optional=True)]
        else:
            return None
        merged = _unify(ftpl, _flat(template(g)))
        if merged is None:
            g.body = body
            if isinstance(body[0], ResS):
                body[0].optional = False
        return merged
    if _identity_residual(g) and all(_changes_shape(m) for m in members):
        wrap, skip = members, [g]
    elif _changes_shape(g) and all(_identity_residual(m) for m in members):
        wrap, skip = [g], members
    else:
        return None
    bodies = [m.body for m in wrap]
    for m in wrap:
        m.body = [ResS(m.body, None, None, None, optional=True)]
    for m in skip:
        m.body[0].optional = True
    merged: list[Any] | None = _flat(template(members[0]))
    for m in [*members[1:], g]:
        merged = _unify(merged, _flat(template(m))) if merged is not None else None
    if merged is None:
        for m, body in zip(wrap, bodies):
            m.body = body
        for m in skip:
            m.body[0].optional = False
    return merged


def drop_labels(body: list[Any], indexed: bool) -> None:
    """Unlabel calls whose default name (`denselayer3`) is their label, scope by scope."""
    counts: Counter[str] = Counter()

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if isinstance(node, LayerS) and node.label is None:
                counts[node.layer.kind] += 1
            elif isinstance(node, GroupS) and node.call is not None:
                name = node.call.block.name
                if node.call.label == f"{name}{counts[name] + 1}" and not indexed:
                    node.call.label = None
                if node.call.label is None:
                    counts[name] += 1
            elif isinstance(node, GroupS) and node.label is None and not node.indexed:
                walk(node.body)
            elif isinstance(node, GroupS):
                drop_labels(node.body, node.indexed)
            elif isinstance(node, ResS):
                walk(node.body)
                if node.shortcut is not None:
                    walk([node.shortcut])
            elif isinstance(node, CatS):
                walk(node.branches)
            elif isinstance(node, GateS):
                walk(node.body.body) if node.body.label is None else \
                    drop_labels(node.body.body, False)
    walk(body)


def _keywords() -> frozenset[str]:
    """Words of the language, which cannot name a block."""
    return frozenset(grammar_keywords())


def _block_name(members: list[GroupS], names: set[str]) -> str:
    stems = {(g.label or "").rstrip("0123456789") for g in members}
    base = stems.pop() if len(stems) == 1 and "" not in stems else "unit"
    if base in _keywords():
        base += "_block"
    name, n = base, 1
    while name in names:
        n += 1
        name = f"{base}{n}"
    names.add(name)
    return name


def _define(tpl: list[Any], members: list[GroupS], names: set[str]) -> BlockS:
    columns = [_values(_flat(template(g)), tpl) for g in members]
    words = [t for t in tpl if isinstance(t, Num)]
    slots: list[Any] = []
    params: list[tuple[str, int | None]] = []
    used: dict[str, int] = {}
    param_columns: dict[str, list[int | None]] = {}
    for n, word in enumerate(words):
        col = [c[n] for c in columns]
        known = [v for v in col if v is not None]
        for name, pcol in param_columns.items() if None in col or len(set(known)) > 1 else ():
            if all(a is None or b is None or a == b for a, b in zip(pcol, col)):
                param_columns[name] = [a if a is not None else b for a, b in zip(pcol, col)]
                slots.append(name)
                break
        else:
            if len(set(known)) <= 1:
                slots.append(Num(word.prefix, known[0], word.default, word.key))
                continue
            name = word.key
            while name in param_columns:   # `c`, `c2`, … never one taken already (a key `c2`)
                used[word.key] = used.get(word.key, 1) + 1
                name = f"{word.key}{used[word.key]}"
            param_columns[name] = col
            slots.append(name)
    for name, col in param_columns.items():
        known = [v for v in col if v is not None]
        value, count = Counter(known).most_common(1)[0]
        params.append((name, value if count * 2 > len(members) else None))
    params.sort(key=lambda p: (p[1] is not None, p[0] != "c"))
    block = BlockS(_block_name(members, names), tpl, members[0].indexed, params, slots)
    # its body is written from a member with every part of the template (a projection
    # shortcut that some members lack, as ResNet's first block of a stage has it)
    block.model = next((g for g, col in zip(members, columns) if None not in col), None)
    for g, col in zip(members, columns):
        g.call = CallS(block, col, g.label)
    for g in members:   # a labelled call whose default name is its label needs no label
        g.call.label = g.label
    return block
