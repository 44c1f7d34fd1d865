"""Step 2 of writing a spec: names. The series–parallel tree becomes a statement tree
whose netspec names are the layers' names.

The layer names (module paths, `layer1.0.conv1`) are turned back into netspec
scopes: a run of items under `layer1` becomes `layer1: [ … ]` (positions, when
its children are numbered) or `layer1: { … }`, and a layer is labelled only where
netspec's own naming would differ. Where the names cannot be written in netspec's
scopes, `NameClash` is raised and the import writes netspec's default names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...kinds import Concat
from ..onnx.reader import Imported, module_path
from .structure import Cat, Fr, Gt, Item, Jn, Res, layers_of


def _common(paths: list[list[str]]) -> list[str]:
    out: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        out.append(parts[0])
    return out


def item_key(item: Item, weighted: Counter[tuple[str, ...]] | None = None) -> list[str]:
    """The module path an item belongs to: that of its weighted layers, if it has any.

    A join is lifted to the module whose forward makes it (MobileNetV2's
    `x + self.conv(x)` belongs to `features.3`, not `features.3.conv`) when that
    module holds nothing else: torch names the add by that module. netspec names a
    join by the scope its statement is in, which holds the statement even when its
    only weights sit in a labelled shortcut or branch; a labelled concat's branches
    are numbered under its label (`convs.0`), so it belongs to that label's group.
    `weighted` counts the weighted layers under every path.
    """
    if isinstance(item, Fr):   # `from a` goes with what follows it (Namer._items)
        return []
    if isinstance(item, Jn):   # torch names a join by the module whose forward makes it
        path, local = module_path(item.merge.node)
        return [*path, local] if item.merge.node.startswith("/") and local else item.merge.path
    layers = layers_of(item)
    required = [x for x in layers if x.required]
    common = _common([x.path for x in (required or layers)])
    join = item.add if isinstance(item, Res) else item.concat if isinstance(item, Cat) else \
        item.mul if isinstance(item, Gt) else None
    if join is None or weighted is None:
        return common
    if join.exact and common[:len(join.path)] == join.path:   # netspec named the join in
        scope = join.path                                      # the scope of its statement
        label = common[len(scope)] if len(common) > len(scope) else None
        numbered = isinstance(item, Cat) and join.kind == Concat.kind and label is not None and \
            all(b and all(x.path[:len(scope) + 2] == [*scope, label, str(i)]
                          for y in b for x in layers_of(y))
                for i, b in enumerate(item.branches))
        return [*scope, label] if numbered else scope   # `convs: concat { branch [ … ] … }`
    owners = ([[*join.path, join.local]] if join.local and not join.exact else []) + \
        ([join.path] if join.exact else [])
    for owner in owners:
        if common[:len(owner)] == owner and weighted[tuple(owner)] == len(required):
            return owner
    return common


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
class JoinS:
    """`concat(a, b)`: a join of named values, the names of its inputs (values.py)."""

    layer: Imported
    label: str | None = None
    names: list[str] = field(default_factory=list)


@dataclass
class FromS:
    """`from a`: the statements after it read `value`, by its name (values.py)."""

    value: str
    name: str = ""


@dataclass
class TapS:
    """`a = {}`: the value `value`, flowing here, is called `name` from here on."""

    value: str
    name: str = ""


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
    slots: list[Any] = field(default_factory=list)   # per slot: param name or literal Num
    model: GroupS | None = None   # the member whose statements its body is written from


class NameClash(Exception):
    """The layer names cannot be written in netspec's scopes."""


class Namer:
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
            if isinstance(item, Fr):   # with the item it leads to, in that item's scope
                after = next((x for x in items[i + 1:] if not isinstance(x, Fr)), None)
                key = item_key(after, self.weighted) if self.keep and after is not None \
                    else prefix
            else:
                key = item_key(item, self.weighted) if self.keep else prefix
            rel = key[len(prefix):] if key[:len(prefix)] == prefix else []
            if rel:
                j = i + 1
                while j < len(items):
                    lead = next((x for x in items[j:] if not isinstance(x, Fr)), items[j])
                    k = item_key(lead, self.weighted)
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
        """`part: concat { branch [ … ] … }` (or `split`): a concat made in this scope whose
        branches are the numbered children of `part` (torch's ModuleList of branches, ASPP's
        `convs`, SKNet's `paths`)."""
        cat = items[0] if len(items) == 1 else None
        if not isinstance(cat, Cat) or part.isdigit() or \
                cat.concat.kind != Concat.kind or \
                [*cat.concat.path] != prefix and cat.concat.exact:
            return None
        sub = [*prefix, part]
        for i, branch in enumerate(cat.branches):
            keys = [item_key(x, self.weighted) for x in branch]
            if not branch or any(k[:len(sub) + 1] != [*sub, str(i)] for k in keys):
                return None
        branches = []
        for i, branch in enumerate(cat.branches):
            where = [*sub, str(i)]
            # a split's branches may hold named modules (SKNet's `paths.0.conv`)
            inner = self._child_indexed(branch, where) or bool(cat.chunks)
            branches.append(GroupS(None, True, self.scope(branch, where, inner)) if inner
                            else GroupS(None, True, []))
            if not inner:
                return None
        for chunk in cat.chunks or []:
            self._consume(chunk, indexed, state)
        self._consume(cat.concat, indexed, state)
        return CatS(branches, cat.concat, cat.chunks, label=part)

    def _child_indexed(self, items: list[Item], prefix: list[str]) -> bool:
        parts = []
        for x in (layer for item in items for layer in layers_of(item)):
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
        if isinstance(item, Fr):
            return FromS(item.value)
        if isinstance(item, Jn):
            named = self._layer(item.merge, prefix, indexed, state)
            return JoinS(named.layer, named.label)
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
        keys = [item_key(next((x for x in items[n:] if not isinstance(x, Fr)), i),
                         self.weighted) for n, i in enumerate(items)] if self.keep else []
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
            raise NameClash(name)
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
        elif isinstance(node, JoinS):
            out.append(node.layer)
    return out
