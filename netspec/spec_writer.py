"""Imported layers → a short, readable spec: structure, names, blocks and repeats.

Four passes over the layers `onnx_import` recovered:

1. structure: the layer graph is decomposed into nested series–parallel parts:
   where a value fans out, the branches run to the add, mul or concat where they
   meet (the first value all their paths reach), its consumers grouped by the
   input of that join they run to, giving `residual { … }` (one branch may be the
   identity, the other the body; a second non-empty branch is the projection where
   the module that adds holds both), `gate { … }`, `concat { branch … }` and
   `add { branch … }` / `mul { branch … }` of two computed branches, and
   `upsample … to branch` where a Resize takes its branch input's size. Concats of
   growing prefixes of the same values (DenseNet's `cat(features)`) are first
   rewritten as concats of the previous concat and the new value, which computes
   the same;
2. naming: the layer names (module paths, `layer1.0.conv1`) are turned back
   into netspec scopes: a run of items under `layer1` becomes `layer1: [ … ]`
   (positions, when its children are numbered) or `layer1: { … }`, and a
   layer is labelled only where netspec's own naming would differ;
3. blocks: groups with the same statements up to numbers become one `block`
   whose differing numbers are parameters (`x$c`, `s$s`), called where the groups
   were; a group that must sit at a numbered position under a name-keyed scope is
   always a block (only a call takes a position there), and so is a labelled
   group making a join of its own (`export --torch` writes a block as a class).
   A residual with an identity shortcut and one with a `project` shortcut unify,
   as in ResNet, and groups with an identity residual unify with groups that
   change the shape as `residual? { … }`, as in MobileNetV2;
4. repeats: equal consecutive statements become `repeat N …`.

The writer then parses its own output and checks it gives the same layers,
shapes and names; if the names cannot be kept, it writes the structure with
netspec's default names instead (and says so), never a different network.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .onnx_import import Imported, OnnxImportError, Word, module_path

# ---- 1. structure ------------------------------------------------------------------


@dataclass
class Res:
    """A residual: body + shortcut (None = identity), joined by `add`."""

    body: list[Any]
    shortcut: list[Any] | None
    add: Imported
    in_shape: tuple[int, ...] = ()


@dataclass
class Cat:
    """Parallel branches merged by `concat` (or by an `add` or `mul` of two branches:
    the same family of merges); an empty branch is the input."""

    branches: list[list[Any]]
    concat: Imported
    chunks: list[Imported] | None = None   # a `split`: the run of channels each branch reads


@dataclass
class Gt:
    """A gate: the input times body(input), joined by `mul` (squeeze-and-excitation)."""

    body: list[Any]
    mul: Imported


Item = Imported | Res | Cat | Gt


def _merge_prefix_concats(layers: list[Imported]) -> None:
    """cat(a0..ak) where cat(a0..ak-1) exists → cat(that, ak): DenseNet's pattern."""
    by_inputs = {tuple(layer.inputs): layer for layer in layers if layer.kind == "concat"}
    for layer in layers:
        if layer.kind == "concat" and len(layer.inputs) > 2:
            prev = by_inputs.get(tuple(layer.inputs[:-1]))
            if prev is not None:
                layer.inputs = [prev.output, layer.inputs[-1]]


def structure(layers: list[Imported], output: str, input_shape: tuple[int, ...]) -> list[Item]:
    """The layers as a series–parallel tree; an error where the graph is not one.

    Where a value fans out, its consumers are grouped by the input of the join
    (the first value all their paths reach) that each one runs to: a group of
    one is a branch; a larger group forks again inside the branch, down to the
    join where it meets. Each upsample to another value's H×W becomes `to branch`
    where that value is what its branch reads.
    """
    _merge_prefix_concats(layers)
    by_out = {layer.output: layer for layer in layers}
    consumers: dict[str, list[Imported]] = {}
    for layer in layers:
        for i in dict.fromkeys(layer.inputs):
            consumers.setdefault(i, []).append(layer)
    order = {"input": -1} | {layer.output: n for n, layer in enumerate(layers)}
    # post-dominators: the values every path from v to the output passes through
    pdom: dict[str, frozenset[str]] = {output: frozenset([output])}
    for layer in reversed(layers):
        for v in [layer.output] if layer.output != output else []:
            succ = [c.output for c in consumers.get(v, [])]
            common = frozenset.intersection(*(pdom[s] for s in succ)) if succ else frozenset()
            pdom[v] = common | {v}
    shape_of = {layer.output: layer.shape for layer in layers} | {"input": input_shape}

    def fail(layer: Imported, why: str) -> None:
        raise OnnxImportError(f"{layer.where}: {why}: netspec expresses branches only as "
                              f"`residual`, `gate`, and `concat`, `add` or `mul` of branches, "
                              f"each opening and closing at one value")

    def place(layer: Imported, fork: str | None) -> Imported:
        if layer.size_of and layer.size_of == fork:   # F.interpolate(x, size=fork.shape[-2:])
            layer.words = [*layer.words[:-1], "branch"]
        return layer

    def branch(v: str, group: list[Imported], u: str) -> list[Item]:
        """The branch from v through the consumers `group` to the join input u."""
        c = group[0]
        if len(group) == 1 and len(c.inputs) == 1:
            return [place(c, v), *chain(c.output, u, v)]
        return chain(v, u, v, group)

    def chain(v: str, stop: str, fork: str | None, only: list[Imported] | None = None
              ) -> list[Item]:
        items: list[Item] = []
        while v != stop:
            cons, only = only or consumers.get(v, []), None
            if not cons:
                fail(by_out[v], "its output is not used on the way to the next join")
            if len(cons) == 1 and len(cons[0].inputs) == 1:
                items.append(place(cons[0], fork))
                v = cons[0].output
                continue
            later = sorted(frozenset.intersection(*(pdom[c.output] for c in cons)),
                           key=order.__getitem__)
            if not later:
                fail(cons[0], "branches that never meet again")
            merge = by_out[later[0]]
            if merge.kind not in ("add", "concat", "mul"):
                fail(merge, f"branches meet at a {merge.kind}")
            groups: dict[str, list[Imported]] = {}
            for c in cons:
                if c is merge:
                    continue
                reach = [u for u in dict.fromkeys(merge.inputs) if u in pdom[c.output]]
                if len(reach) != 1:
                    fail(c, "a branch that does not run to one input of the join")
                groups.setdefault(reach[0], []).append(c)
            computed = [u for u in merge.inputs if u != v]
            if set(groups) != set(computed) or len(set(computed)) != len(computed) or \
                    merge.kind != "concat" and len(set(merge.inputs)) != len(merge.inputs):
                fail(merge, "a join of values that do not all branch from one value")
            branches = {u: branch(v, groups[u], u) for u in computed} | \
                ({v: []} if v in merge.inputs else {})
            a, b = (branches[u] for u in merge.inputs[:2])
            if merge.kind == "mul" and not (a and b):   # x × gate(x), in either order
                items.append(Gt(a or b, merge))
            elif merge.kind == "add" and (not (a and b) or _residual(merge, a, b, shape_of[v])):
                items.append(Res(a or b, (b or None) if a else None, merge, shape_of[v]))
            else:
                inputs = list(merge.inputs)
                if merge.kind == "mul" and _broadcast(shape_of[inputs[0]], shape_of[inputs[1]]):
                    inputs.reverse()   # netspec's mul broadcasts its second branch
                cat = Cat([branches[u] for u in inputs], merge)
                firsts = [b[0] if b and isinstance(b[0], Imported) else None
                          for b in cat.branches]
                if merge.kind == "concat" and all(
                        f is not None and f.chunk == (i, len(firsts))
                        for i, f in enumerate(firsts)):   # split { branch … }
                    cat.chunks = firsts
                    cat.branches = [b[1:] for b in cat.branches]
                items.append(cat)
            v = merge.output
        return items

    return chain("input", output, None)


def _broadcast(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    """Whether `first` is one value per channel (1×1×C) multiplying a volume `second`."""
    return len(first) == 3 and first[:2] == (1, 1) and second[:2] != (1, 1)


def _residual(add: Imported, body: list[Any], shortcut: list[Any], shape: tuple[int, ...]
              ) -> bool:
    """Whether an add of two computed branches is a residual with a projection shortcut.

    netspec's own export says which statement made it (`residual` or `add`). In a
    torch export a projection is a shortcut used where the body changes the shape,
    and the module that adds (`layer1.0`) holds both paths, as in ResNet's
    `out += self.downsample(x)`; otherwise (LR-ASPP's head adds a path through the
    backbone to one of its own) the add is `add { branch … branch … }`.
    """
    if add.text:
        return add.text.startswith("residual")
    path, local = module_path(add.node)   # torch names it by its module: `/layer1/layer1.0/Add`
    owner = [*path, local] if add.node.startswith("/") and local else path
    return add.shape != shape and all(
        x.path[:len(owner)] == owner for item in [*body, *shortcut] for x in _layers_of(item))


def _layers_of(item: Item) -> list[Imported]:
    if isinstance(item, Imported):
        return [item]
    if isinstance(item, Res):
        return [*(x for i in item.body for x in _layers_of(i)),
                *(x for i in item.shortcut or [] for x in _layers_of(i)), item.add]
    if isinstance(item, Gt):
        return [*(x for i in item.body for x in _layers_of(i)), item.mul]
    return [*(item.chunks or []), *(x for b in item.branches for i in b for x in _layers_of(i)),
            item.concat]


def _common(paths: list[list[str]]) -> list[str]:
    out: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        out.append(parts[0])
    return out


def _key(item: Item, weighted: Counter[tuple[str, ...]] | None = None) -> list[str]:
    """The module path an item belongs to: that of its weighted layers, if it has any.

    A join is lifted to the module whose forward makes it (MobileNetV2's
    `x + self.conv(x)` belongs to `features.3`, not `features.3.conv`) when that
    module holds nothing else: torch names the add by that module. netspec names a
    join by the scope its statement is in, which holds the statement even when its
    only weights sit in a labelled shortcut or branch; a labelled concat's branches
    are numbered under its label (`convs.0`), so it belongs to that label's group.
    `weighted` counts the weighted layers under every path.
    """
    layers = _layers_of(item)
    required = [x for x in layers if x.required]
    common = _common([x.path for x in (required or layers)])
    join = item.add if isinstance(item, Res) else item.concat if isinstance(item, Cat) else \
        item.mul if isinstance(item, Gt) else None
    if join is None or weighted is None:
        return common
    if join.exact and common[:len(join.path)] == join.path:   # netspec named the join in
        scope = join.path                                      # the scope of its statement
        label = common[len(scope)] if len(common) > len(scope) else None
        numbered = isinstance(item, Cat) and join.kind == "concat" and label is not None and \
            all(b and all(x.path[:len(scope) + 2] == [*scope, label, str(i)]
                          for y in b for x in _layers_of(y))
                for i, b in enumerate(item.branches))
        return [*scope, label] if numbered else scope   # `convs: concat { branch [ … ] … }`
    owners = ([[*join.path, join.local]] if join.local and not join.exact else []) + \
        ([join.path] if join.exact else [])
    for owner in owners:
        if common[:len(owner)] == owner and weighted[tuple(owner)] == len(required):
            return owner
    return common


# ---- 2. naming: the statement tree -------------------------------------------------


@dataclass
class LayerS:
    layer: Imported
    label: str | None = None


@dataclass
class GroupS:
    """`label: [ … ]` / `label: { … }`, or unlabelled; `call` once it became a block call."""

    label: str | None
    indexed: bool
    body: list[Any]
    must_block: bool = False
    call: CallS | None = None


@dataclass
class ResS:
    body: list[Any]
    shortcut: GroupS | None
    kind: str | None          # None (identity), "project" or "shortcut"
    add: Imported | None = None   # None: a `residual?` whose shapes differ (no add)
    optional: bool = False


@dataclass
class CatS:
    branches: list[GroupS]
    concat: Imported | None = None
    chunks: list[Imported] | None = None
    label: str | None = None   # `convs: concat { branch [ … ] … }` numbers its branches


@dataclass
class GateS:
    body: GroupS              # labelled: `se: gate { … }`
    mul: Imported


@dataclass
class CallS:
    block: BlockS
    values: list[Any]         # one per template slot
    label: str | None = None


@dataclass
class RepeatS:
    count: int
    item: Any


@dataclass
class BlockS:
    name: str
    template: list[Any]
    indexed: bool
    params: list[tuple[str, int | None]] = field(default_factory=list)
    slots: list[Any] = field(default_factory=list)   # per slot: param name or literal Word


class _NameClash(Exception):
    """The layer names cannot be written in netspec's scopes."""


class _Namer:
    """Turns the item tree into statements whose netspec names are the layers' names."""

    def __init__(self, keep_names: bool, layers: list[Imported]) -> None:
        self.keep = keep_names
        self.weighted: Counter[tuple[str, ...]] = Counter()
        for layer in layers:
            if layer.required:
                for n in range(len(layer.path) + 1):
                    self.weighted[tuple(layer.path[:n])] += 1

    def scope(self, items: list[Item], prefix: list[str], indexed: bool) -> list[Any]:
        state = {"index": 0, "counts": Counter(), "taken": set()}
        return self._items(items, prefix, indexed, state)

    def _items(self, items: list[Item], prefix: list[str], indexed: bool,
               state: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(items):
            item = items[i]
            key = _key(item, self.weighted) if self.keep else prefix
            rel = key[len(prefix):] if key[:len(prefix)] == prefix else []
            if rel:
                j = i + 1
                while j < len(items):
                    k = _key(items[j], self.weighted)
                    r2 = k[len(prefix):] if k[:len(prefix)] == prefix else []
                    if r2[:1] != rel[:1]:
                        break
                    j += 1
                out.append(self._group(items[i:j], prefix, rel[0], indexed, state))
                i = j
                continue
            out.append(self._item(item, prefix, indexed, state))
            i += 1
        return out

    def _labelled_concat(self, items: list[Item], prefix: list[str], part: str, indexed: bool,
                         state: dict[str, Any]) -> CatS | None:
        """`part: concat { branch [ … ] … }`: a concat made in this scope whose branches are
        the numbered children of `part` (torch's ModuleList of branches, ASPP's `convs`)."""
        cat = items[0] if len(items) == 1 else None
        if not isinstance(cat, Cat) or cat.chunks or part.isdigit() or \
                cat.concat.kind != "concat" or \
                [*cat.concat.path] != prefix and cat.concat.exact:
            return None
        sub = [*prefix, part]
        for i, branch in enumerate(cat.branches):
            keys = [_key(x, self.weighted) for x in branch]
            if not branch or any(k[:len(sub) + 1] != [*sub, str(i)] for k in keys):
                return None
        branches = []
        for i, branch in enumerate(cat.branches):
            where = [*sub, str(i)]
            inner = self._child_indexed(branch, where)
            branches.append(GroupS(None, True, self.scope(branch, where, inner)) if inner
                            else GroupS(None, True, []))
            if not inner:
                return None
        self._consume(cat.concat, indexed, state)
        return CatS(branches, cat.concat, label=part)

    def _child_indexed(self, items: list[Item], prefix: list[str]) -> bool:
        parts = []
        for x in (layer for item in items for layer in _layers_of(item)):
            full = [*x.path, x.local] if x.local else x.path
            if full[:len(prefix)] == prefix and len(full) > len(prefix) and x.required:
                parts.append(full[len(prefix)])
        return any(p.isdigit() for p in parts)

    def _group(self, items: list[Item], prefix: list[str], part: str, indexed: bool,
               state: dict[str, Any]) -> GroupS | CatS:
        sub = [*prefix, part]
        labelled = self._labelled_concat(items, prefix, part, indexed, state)
        if labelled is not None:
            return labelled
        child_indexed = self._child_indexed(items, sub)
        body = self.scope(items, sub, child_indexed)
        if part.isdigit():
            label = self._number(int(part), ".".join(sub), indexed, state)
            return GroupS(label, child_indexed, body, must_block=not child_indexed)
        return GroupS(part, child_indexed, body)

    def _item(self, item: Item, prefix: list[str], indexed: bool, state: dict[str, Any]) -> Any:
        if isinstance(item, Imported):
            return self._layer(item, prefix, indexed, state)
        if isinstance(item, Res):
            body = self._items(item.body, prefix, indexed, state)
            shortcut = kind = None
            if item.shortcut is not None:
                shortcut = self._branch(item.shortcut, prefix, indexed, state)
                differ = item.add.shape != item.in_shape
                kind = "project" if differ else "shortcut"
            self._consume(item.add, indexed, state)
            return ResS(body, shortcut, kind, item.add)
        if isinstance(item, Gt):
            gate = self._branch(item.body, prefix, indexed, state)
            self._consume(item.mul, indexed, state)
            return GateS(gate, item.mul)
        for chunk in item.chunks or []:
            self._consume(chunk, indexed, state)
        branches = [self._branch(b, prefix, indexed, state) for b in item.branches]
        self._consume(item.concat, indexed, state)
        return CatS(branches, item.concat, item.chunks)

    def _branch(self, items: list[Item], prefix: list[str], indexed: bool,
                state: dict[str, Any]) -> GroupS:
        keys = [_key(i, self.weighted) for i in items] if self.keep else []
        rels = [k[len(prefix):] for k in keys if k[:len(prefix)] == prefix]
        first = {r[0] if r else None for r in rels}
        if items and len(first) == 1 and None not in first and len(rels) == len(items) \
                and not next(iter(first)).isdigit():
            part = next(iter(first))
            sub = [*prefix, part]
            child_indexed = self._child_indexed(items, sub)
            return GroupS(part, child_indexed, self.scope(items, sub, child_indexed))
        return GroupS(None, False, self._items(items, prefix, indexed, state))

    def _consume(self, layer: Imported, indexed: bool, state: dict[str, Any]) -> None:
        if indexed:
            state["index"] += 1
        else:
            state["counts"][layer.kind] += 1

    def _layer(self, layer: Imported, prefix: list[str], indexed: bool,
               state: dict[str, Any]) -> LayerS:
        """Unlabelled where netspec's default name is the layer's, else labelled.

        Layers without weights take the default name (their names load nothing),
        except in a numbered scope where they would take another item's number.
        """
        local = layer.local if self.keep and layer.path == prefix else ""
        default = str(state["index"]) if indexed else f"{layer.kind}{state['counts'][layer.kind] + 1}"
        if not self.keep or local == default or not local and (not layer.required or not indexed):
            self._consume(layer, indexed, state)
            return LayerS(layer)
        if local.isdigit():
            return LayerS(layer, self._number(int(local), layer.name, indexed, state))
        return LayerS(layer, local or f"{layer.kind}_{state['index']}")

    def _number(self, number: int, name: str, indexed: bool, state: dict[str, Any]) -> str | None:
        """Take position `number` in a `[ … ]`: unlabelled if it is the next one, else a
        number label (`2: fc 1000`: torch's exporter drops eval-mode Dropout modules, so
        `classifier.1` may be the first layer left). Numbers only go forward."""
        if not indexed or number < state["index"]:
            raise _NameClash(name)
        label = None if number == state["index"] else str(number)
        state["index"] = number + 1
        return label


def build_order(body: list[Any]) -> list[Imported]:
    """The layers in the order netspec builds the statements."""
    out: list[Imported] = []
    for node in body:
        if isinstance(node, LayerS):
            out.append(node.layer)
        elif isinstance(node, GroupS):
            out += build_order(node.body)
        elif isinstance(node, ResS):
            out += build_order(node.body)
            out += build_order([node.shortcut] if node.shortcut is not None else [])
            out += [node.add] if node.add is not None else []
        elif isinstance(node, CatS):
            out += node.chunks or []
            out += build_order(node.branches)
            out.append(node.concat)
        elif isinstance(node, GateS):
            out += build_order(node.body.body)
            out.append(node.mul)
    return out


# ---- rendering ----------------------------------------------------------------------

_SC_NONE = ("sc-none",)
_SC_BEGIN, _SC_END = ("sc-begin",), ("sc-end",)


_SEP = ("sep",)
_JOIN = ("join",)   # a separator that stays on the line when the group is written over lines
#: Layers that read as part of the line before them: `conv 3x3 x64; bn; relu`.
_TRAILING = frozenset({"bn", "relu", "relu6", "tanh", "sigmoid", "softmax", "dropout", "flatten",
                       "lrn", "silu", "gelu", "hswish", "hsigmoid", "leaky"})


def _separator(node: Any) -> tuple[str]:
    return _JOIN if isinstance(node, LayerS) and node.layer.kind in _TRAILING else _SEP


def _stmt_tokens(node: Any) -> list[Any]:
    """A statement as tokens: strings, Words (numbers), calls, brackets and separators."""
    if isinstance(node, LayerS):
        return ([f"{node.label}:"] if node.label else []) + list(node.layer.words)
    if isinstance(node, GroupS):
        if node.call is not None:
            return _call_tokens(node.call)
        return ([f"{node.label}:"] if node.label else []) + _braces(node.body, node.indexed)
    if isinstance(node, CallS):
        return _call_tokens(node)
    if isinstance(node, RepeatS):
        return ["repeat", Word("", node.count, None, "n"), *_stmt_tokens(node.item)]
    if isinstance(node, ResS):
        out = ["residual?" if node.optional else "residual", *_braces(node.body, False)]
        if node.kind == "project":
            out += [_SC_BEGIN, "project", *_stmt_tokens(node.shortcut), _SC_END]
        elif node.kind == "shortcut":
            out += ["shortcut", *_stmt_tokens(node.shortcut)]
        else:
            out.append(_SC_NONE)
        return out
    if isinstance(node, GateS):
        label = [f"{node.body.label}:"] if node.body.label else []
        return [*label, "gate", *_braces(node.body.body, False)]
    if isinstance(node, CatS):
        out = ([f"{node.label}:"] if node.label else []) + \
            ["split" if node.chunks else node.concat.kind, "{"]
        for n, b in enumerate(node.branches):
            out += [*([_SEP] if n else []), "branch", *_stmt_tokens(b)]
        return [*out, "}"]
    raise TypeError(node)


def _call_tokens(call: CallS) -> list[Any]:
    return ([f"{call.label}:"] if call.label else []) + [("call", call)]


def _call_text(call: CallS) -> str:
    """`basic(128, s=2)`: parameters without a default by position, others by name if not the default."""
    args = []
    for (name, default), value in zip(call.block.params, _param_values(call)):
        if default is None:
            args.append(str(value))
        elif value != default:
            args.append(f"{name}={value}")
    return f"{call.block.name}({', '.join(args)})" if args else call.block.name


def _param_values(call: CallS) -> list[int]:
    values: dict[str, int] = {}
    for slot, value in zip(call.block.slots, call.values):
        if isinstance(slot, str) and value is not None:
            values.setdefault(slot, value)
    return [values.get(name, default) for name, default in call.block.params]


def _braces(body: list[Any], indexed: bool) -> list[Any]:
    out: list[Any] = ["[" if indexed else "{"]
    for n, stmt in enumerate(_repeats(body)):
        out += [*([_separator(stmt)] if n else []), *_stmt_tokens(stmt)]
    return [*out, "]" if indexed else "}"]


def _repeats(body: list[Any]) -> list[Any]:
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
    if not _repeatable(item):
        return False
    a, b = _stmt_tokens(item), _stmt_tokens(node)
    return _text(a) == _text(b)


def _piece(t: Any) -> str:
    if isinstance(t, Word):
        return t.text() if t.value != t.default else ""
    if isinstance(t, tuple):
        return _call_text(t[1]) if t[0] == "call" else ""
    return t


def _text(tokens: list[Any], indent: str = "") -> str:
    """Tokens → spec text: groups on one line when short, else one statement per line."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("[", "{"):
            depth, j = 0, i
            while True:
                depth += tokens[j] in ("[", "{") if isinstance(tokens[j], str) else 0
                depth -= tokens[j] in ("]", "}") if isinstance(tokens[j], str) else 0
                if depth == 0:
                    break
                j += 1
            stmts: list[list[Any]] = [[]]
            joined: list[bool] = [False]
            depth = 0
            for x in tokens[i + 1:j]:
                if x in (_SEP, _JOIN) and depth == 0:
                    stmts.append([])
                    joined.append(x == _JOIN)
                    continue
                if isinstance(x, str):
                    depth += (x in ("[", "{")) - (x in ("]", "}"))
                stmts[-1].append(x)
            texts = [_text(s, indent + "    ") for s in stmts]
            inline = f"{t} {'; '.join(texts)} {tokens[j]}" if any(texts) else t + tokens[j]
            used = len(" ".join(w for w in words if w).rsplit("\n", 1)[-1]) + len(indent)
            if used + len(inline) <= 76 and "\n" not in inline:
                words.append(inline)
            else:
                lines: list[str] = []
                for text, join in zip(texts, joined):
                    if join and lines and "\n" not in lines[-1] and \
                            len(lines[-1]) + len(text) + len(indent) < 72:
                        lines[-1] += "; " + text
                    else:
                        lines.append(text)
                words.append(t + "\n" + "".join(f"{indent}    {x}\n" for x in lines)
                             + indent + tokens[j])
            i = j + 1
            continue
        words.append(_piece(t))
        i += 1
    return " ".join(w for w in words if w)


# ---- 3. blocks -------------------------------------------------------------------------


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


def _template(group: GroupS) -> list[Any]:
    return _braces(group.body, group.indexed)


def _flat(tokens: list[Any]) -> list[Any]:
    """Tokens with every call argument spelled out as a Word, so it can become a parameter."""
    out: list[Any] = []
    for t in tokens:
        if isinstance(t, tuple) and t[0] == "call":
            call = t[1]
            out.append(("callname", call.block.name, tuple(p for p, _ in call.block.params)))
            out.extend(Word("", v, d, p) for (p, d), v in zip(call.block.params,
                                                              _param_values(call)))
        else:
            out.append(t)
    return out


def _unify(a: list[Any], b: list[Any]) -> list[Any] | None:
    """Two flat templates as one, an identity shortcut matching a projection; else None."""
    out: list[Any] = []
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i], b[j]
        if x == _SC_NONE and y == ("sc-begin",):
            end = b.index(("sc-end",), j)
            out.extend(b[j:end + 1])
            i, j = i + 1, end + 1
        elif y == _SC_NONE and x == ("sc-begin",):
            end = a.index(("sc-end",), i)
            out.extend(a[i:end + 1])
            i, j = end + 1, j + 1
        elif isinstance(x, Word) and isinstance(y, Word):
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
    """The instance's number for each Word of the template (None where it has no shortcut)."""
    vals: list[int | None] = []
    i = 0
    skipping = False
    for t in template:
        if t == ("sc-begin",) and instance[i] == _SC_NONE:
            skipping = True
            i += 1
            continue
        if skipping:
            if isinstance(t, Word):
                vals.append(None)
            if t == ("sc-end",):
                skipping = False
            continue
        if isinstance(t, Word):
            vals.append(instance[i].value)
        i += 1
    return vals


def _make_blocks(top: list[Any]) -> list[BlockS]:
    """Turn repeated (and position-bound) groups into block definitions and calls."""
    blocks: list[BlockS] = []
    names: set[str] = set()
    pending = _groups_post_order(top)
    done: set[int] = set()
    while pending:
        ready = [g for g in pending if all(id(c) in done for c in _groups_post_order(g.body))]
        pending = [g for g in pending if all(g is not r for r in ready)]
        families: list[tuple[list[Any], list[GroupS]]] = []
        for g in ready:
            tpl = _flat(_template(g))
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
        _drop_labels(top, False)
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
        merged = _unify(ftpl, _flat(_template(g)))
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
    merged: list[Any] | None = _flat(_template(members[0]))
    for m in [*members[1:], g]:
        merged = _unify(merged, _flat(_template(m))) if merged is not None else None
    if merged is None:
        for m, body in zip(wrap, bodies):
            m.body = body
        for m in skip:
            m.body[0].optional = False
    return merged


def _drop_labels(body: list[Any], indexed: bool) -> None:
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
                _drop_labels(node.body, node.indexed)
            elif isinstance(node, ResS):
                walk(node.body)
                if node.shortcut is not None:
                    walk([node.shortcut])
            elif isinstance(node, CatS):
                walk(node.branches)
            elif isinstance(node, GateS):
                walk(node.body.body) if node.body.label is None else \
                    _drop_labels(node.body.body, False)
    walk(body)


#: Words of the language, which cannot name a block.
_KEYWORDS = frozenset({
    "input", "conv", "pool", "fc", "bn", "lrn", "dropout", "flatten", "max", "avg", "global",
    "ceil", "nobias", "relu", "relu6", "tanh", "sigmoid", "softmax", "same", "valid", "repeat",
    "residual", "project", "shortcut", "concat", "branch", "block", "gate", "aux", "silu",
    "gelu", "hswish", "hsigmoid", "leaky", "countpad",
    "split", "add", "mul", "layernorm", "scale", "linear", "shuffle", "deconv", "upsample",
    "nearest", "bilinear", "to", "as", "use"})


def _block_name(members: list[GroupS], names: set[str]) -> str:
    stems = {(g.label or "").rstrip("0123456789") for g in members}
    base = stems.pop() if len(stems) == 1 and "" not in stems else "unit"
    if base in _KEYWORDS:
        base += "_block"
    name, n = base, 1
    while name in names:
        n += 1
        name = f"{base}{n}"
    names.add(name)
    return name


def _define(tpl: list[Any], members: list[GroupS], names: set[str]) -> BlockS:
    columns = [_values(_flat(_template(g)), tpl) for g in members]
    words = [t for t in tpl if isinstance(t, Word)]
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
                slots.append(Word(word.prefix, known[0], word.default, word.key))
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
    for g, col in zip(members, columns):
        g.call = CallS(block, col, g.label)
    for g in members:   # a labelled call whose default name is its label needs no label
        g.call.label = g.label
    return block


def _block_text(block: BlockS) -> str:
    """`block NAME(params) { … }`, numbers that vary as `$param`."""
    out: list[Any] = []
    slots = iter(block.slots)
    call: list[str] = []
    call_args: list[str] = []
    for t in block.template:
        if isinstance(t, tuple) and t[0] == "callname":
            call, call_args = [t[1], *t[2]], []
            if not t[2]:
                out.append(t[1])
                call = []
            continue
        if isinstance(t, Word):
            slot = next(slots)
            if call:   # an argument of the call being spelled out
                if isinstance(slot, str):
                    call_args.append(f"{call[len(call_args) + 1]}=${slot}")
                elif slot.value != t.default:
                    call_args.append(f"{call[len(call_args) + 1]}={slot.value}")
                else:
                    call_args.append("")
                if len(call_args) == len(call) - 1:
                    args = ", ".join(a for a in call_args if a)
                    out.append(f"{call[0]}({args})" if args else call[0])
                    call = []
                continue
            out.append(f"{t.prefix}${slot}" if isinstance(slot, str) else slot)
            continue
        out.append(t)
    params = ", ".join(f"{p}={d}" if d is not None else p for p, d in block.params)
    return f"block {block.name}({params}) " + _text(out)


# ---- the whole spec -----------------------------------------------------------------------


def write_spec(name: str, input_shape: tuple[int, ...], layers: list[Imported], output: str,
               source: str, keep_names: bool = True) -> tuple[str, list[Imported]]:
    """The spec text for the imported layers, and the layers in the order the spec builds them.

    The text is not checked here; `importer.import_onnx` parses it and compares.
    """
    items = structure(layers, output, input_shape)
    top = _Namer(keep_names, layers).scope(items, [], False)
    blocks = _make_blocks(top)
    lines = [f"# {name}: imported by netspec from {source}"]
    lines += [_block_text(b) for b in blocks]
    lines.append("input " + "x".join(map(str, input_shape)))
    previous = None
    for stmt in _repeats(top):
        text = _text(_stmt_tokens(stmt))
        if _separator(stmt) == _JOIN and isinstance(previous, LayerS) and \
                len(lines[-1]) + len(text) < 70:
            lines[-1] += "; " + text
        else:
            lines.append(text)
        previous = stmt
    return "\n".join(lines) + "\n", build_order(top)
