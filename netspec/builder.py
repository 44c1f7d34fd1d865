"""From syntax tree to IR: expand blocks and repeats, name every layer, infer shapes.

The builder walks the statements in order, keeping the value that flows (the
last layer built). Shapes are inferred as each layer is built, so that a
`project` shortcut can be used exactly when a residual body changes the shape,
and `$params` / `{C // 2}` can read the incoming shape.

Naming follows the structure, like a PyTorch module tree: a labelled group or
block instance becomes a prefix (`layer1.0.conv1`); inside `{...}` layers are
named by kind and count (`conv1`, `bn2`), inside `[...]` by position (`0`, `1`),
as `nn.Sequential` names them. So weights keyed like a torch `state_dict` load
by name wherever the structure matches.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ._lark import Token
from .errors import Reporter, ShapeError, SpecError, did_you_mean
from .layers import Add, Chunk, Concat, Input, Layer, Merge, Multiply, Pos, Upsample, shape_str
from .layers.base import in_file
from .limits import MAX_EXPRESSION, MAX_VALUE, MAX_WORK
from .maker import LayerMaker
from .parser import unknown_word_hint
from .syntax import (
    Aux,
    BlockDef,
    Call,
    Gate,
    Group,
    Labeled,
    LayerStmt,
    Node,
    Repeat,
    Residual,
    Use,
    pos_of,
)
from .syntax import Concat as ConcatNode

MAX_DEPTH = 32            # block calls within block calls
MAX_NESTING = 100         # groups, repeats and calls within each other
MAX_LAYERS = MAX_WORK     # layers made (MAX_WORK: statements expanded, see limits.py)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_PARAM = re.compile(r"\$([A-Za-z_]\w*)|\{([^{}\n]*)\}")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}
_COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
            ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


class _Unresolved(Exception):
    """A `$param` or `{expression}` that cannot be evaluated (already reported)."""


class _Abort(Exception):
    """The spec outgrew a limit (already reported): building stops."""


class Scope:
    """Where names are given: a prefix, and naming by kind or by position."""

    def __init__(self, prefix: str, indexed: bool) -> None:
        self.prefix = prefix
        self.indexed = indexed
        self.counts: dict[str, int] = {}
        self.next_index = 0

    def full(self, local: str) -> str:
        """`local` under this scope's prefix: `layer1.0` + `conv1`."""
        return f"{self.prefix}.{local}" if self.prefix else local

    def name(self, kind: str) -> str:
        """The next default name: `conv3` by kind, or `4` by position."""
        if self.indexed:
            local = str(self.next_index)
            self.next_index += 1
        else:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            local = f"{kind}{self.counts[kind]}"
        return self.full(local)

    def child(self, label: Token | None, kind: str, indexed: bool) -> Scope:
        """The scope of a labelled or anonymous sub-structure."""
        return Scope(self.full(str(label)) if label is not None else self.name(kind), indexed)


class Builder:
    """Builds the layers of one spec, reporting errors to `rep`."""

    def __init__(self, text: str, rep: Reporter, input_dims: tuple[int, ...] | None = None) -> None:
        self.rep = rep
        self.input_dims = input_dims        # replaces the size the spec's `input` gives
        self.maker = LayerMaker(text, rep)
        self.layers: list[Layer] = []
        self.owner: dict[str, Layer] = {}
        self.blocks: dict[str, BlockDef] = {}
        self.current: Layer | None = None
        self.input: Input | None = None
        self.early: Layer | None = None     # the first layer written before `input`
        self.context: list[str] = []
        self.instances: dict[str, str] = {}   # block instance name → `basic(c=64, s=1)`
        self.statements: list[Node] = []      # the top level, for code generators
        #: what each residual decided (see Network.residuals), for code generators
        self.residuals: list[tuple[Residual, dict[str, int], int | None,
                                   tuple[int | None, int | None], bool]] = []
        self._block_inputs: list[int | None] = []   # channels each open block call reads
        self.nesting = 0
        self.branch_inputs: list[Layer | None] = []   # what each enclosing branch reads
        self.work = 0                          # statements expanded so far
        self._costs: dict[tuple, int] = {}     # (block, its arguments) → statements it expands to
        rep.context = self.context

    # ---- entry -------------------------------------------------------------------
    def build(self, nodes: list[Node]) -> list[Layer]:
        """All layers of the spec in order, input first; errors go to the reporter."""
        for node in nodes:
            if isinstance(node, BlockDef):
                with in_file(node.pos.file):
                    self._define(node)
        statements = self.statements = [n for n in nodes if not isinstance(n, BlockDef)]
        top = Scope("", False)
        try:
            for node in statements:
                self.statement(node, top, {}, top_level=True)
        except _Abort:
            return self.layers
        if self.input is None:
            first = self.layers[0].pos if self.layers else Pos(1, 1)
            self.rep.error(first, "the spec has no `input`" if self.layers else "the spec is empty",
                           hint="start with the input volume, e.g. `input 32x32x3`")
        elif self.early is not None:
            self.rep.error(self.early.pos, f"`{self.early.text}` comes before `input`",
                           hint=f"move `{self.input.text}` (line {self.input.line}) to the top")
        elif self.layers and self.layers[-1].aux:
            self.rep.error(self.layers[-1].pos, "the network ends inside an `aux` head: its "
                           "output would be a head that is not computed at inference",
                           SpecError, hint="an `aux` head branches off; the main path "
                                           "continues after it")
        for block in self.blocks.values():
            if not block.uses and block.pos.file is None:   # a library's blocks may go unused
                self.rep.warning(block.pos, "unused-block",
                                 f"block `{block.name}` is defined but never used",
                                 hint="call it as a statement, e.g. "
                                      f"`{block.name}({', '.join(str(p[0]) for p in block.params)})`")
        return self.layers

    def define(self, nodes: list[Node]) -> list[tuple[str, str | None]]:
        """Check a library's block definitions only; return (name, file) of each block."""
        for node in nodes:
            with in_file(node.pos.file):
                self._define(node)
        return [(name, block.pos.file) for name, block in self.blocks.items()]

    def _define(self, block: BlockDef) -> None:
        name = str(block.name)
        if name in self.blocks:
            first = self.blocks[name].pos
            where = f"line {first.line}" if first.file == block.pos.file else \
                f"{first.file or self.rep.filename or 'the spec'}, line {first.line}"
            self.rep.error(pos_of(block.name), f"block `{name}` is defined twice (first in "
                                               f"{where})", SpecError,
                           hint="rename one of them" if first.file == block.pos.file else
                           "a spec and the libraries it uses share one set of block names")
            return
        seen: set[str] = set()
        for param, _ in block.params:
            if str(param) in seen:
                self.rep.error(pos_of(param), f"parameter `{param}` of `{name}` is named twice",
                               SpecError)
            else:
                self._parameter_name(param, "a parameter", {})
            seen.add(str(param))
        self.blocks[name] = block

    def _parameter_name(self, tok: Token, what: str, env: dict[str, int]) -> bool:
        """Whether `tok` can name a parameter (or a repeat's counter); report why not."""
        if str(tok) in ("C", "H", "W"):
            self.rep.error(pos_of(tok), f"`{tok}` cannot name {what}: C, H and W "
                                        f"are the incoming shape", SpecError)
        elif not _IDENTIFIER.fullmatch(str(tok)):
            self.rep.error(pos_of(tok), f"`{tok}` cannot name {what}: use letters, digits "
                                        f"and `_` (no `-` or `$`)", SpecError)
        elif str(tok) in env:
            self.rep.error(pos_of(tok), f"`{tok}` cannot name {what}: it is already a "
                                        f"parameter here", SpecError, hint="choose another name")
        else:
            return True
        return False

    def _label(self, label: Token, scope: Scope, env: dict[str, int]) -> Token | None:
        """The label with its `$params` filled in (None if one is unknown, reported).

        Inside `[ ... ]` a label that is a number sets the item's position: the
        numbering continues after it, and may skip numbers but never go back.
        """
        if "$" in label:
            try:
                label = self._substitute(label, env)
            except _Unresolved:
                return None
        if scope.indexed and label.isdigit():
            number = int(label)
            if number < scope.next_index:
                taken = scope.next_index - 1
                self.rep.error(pos_of(label), f"sequence number {number} "
                               + ("is already taken" if number == taken else "goes backwards")
                               + f": the items before it in this `[ ... ]` are numbered up to "
                               f"{taken}", SpecError,
                               hint=f"numbers in `[ ... ]` only go forward; without a label "
                                    f"this item would be number {scope.next_index}")
                return None
            scope.next_index = number + 1
        return label

    # ---- statements --------------------------------------------------------------
    def statement(self, node: Node, scope: Scope, env: dict[str, int], *,
                  label: Token | None = None, top_level: bool = False) -> None:
        """Build one statement in `scope`, with `env` the enclosing block's parameters."""
        self.nesting += 1
        self.work += 1
        if self.nesting > MAX_NESTING:
            self.rep.error(getattr(node, "pos", Pos(1, 1)), f"groups, repeats and block calls "
                           f"are nested more than {MAX_NESTING} deep", SpecError)
            raise _Abort
        if self.rep.dropped:
            raise _Abort   # more errors than are shown: enough to act on
        self._afford(node, 0, env)
        try:
            self._statement(node, scope, env, label, top_level)
        finally:
            self.nesting -= 1

    def _statement(self, node: Node, scope: Scope, env: dict[str, int], label: Token | None,
                   top_level: bool) -> None:
        if isinstance(node, Labeled):
            name = self._label(node.name, scope, env)
            if name is None:
                self.current = None
                return
            self.statement(node.item, scope, env, label=name, top_level=top_level)
        elif isinstance(node, LayerStmt):
            self._layer_statement(node, scope, env, label, top_level)
        elif isinstance(node, Group):
            inner = (scope.child(label, "", node.indexed) if label is not None
                     else scope.child(None, "seq", True) if node.indexed else scope)
            for child in node.body:
                self.statement(child, inner, env)
        elif isinstance(node, Repeat):
            count = self._int(node.count, env)
            if count is not None and count < 0:
                self.rep.error(pos_of(node.count), f"repeat count must not be negative, not "
                                                   f"{count}", ShapeError)
            inner = scope.child(label, "", True) if label is not None else scope
            var = str(node.var) if node.var is not None else None
            if var is not None and not self._parameter_name(node.var, "a repeat's counter",
                                                            env):
                return
            if count:
                self._afford(node.item, count, env, f"`repeat {count}`", node.pos)
            for i in range(max(count or 0, 0)):
                self.statement(node.item, inner, env if var is None else {**env, var: i})
        elif isinstance(node, Residual):
            self._residual(node, scope, env)
        elif isinstance(node, ConcatNode):
            self._concat(node, scope.child(label, "", True) if label is not None else scope,
                         env, scope)
        elif isinstance(node, Gate):
            self._gate(node, scope, env, label)
        elif isinstance(node, Aux):
            self._aux(node, scope, env, label)
        elif isinstance(node, Call):
            self._call(node, scope, env, label)
        elif isinstance(node, BlockDef):
            self.rep.error(node.pos, "a block is defined inside a group", SpecError,
                           hint="define blocks at the top level of the spec")
        elif isinstance(node, Use):
            self.rep.error(node.pos, "`use` belongs at the top level of a file", SpecError)

    def _layer_statement(self, node: LayerStmt, scope: Scope, env: dict[str, int],
                         label: Token | None, top_level: bool) -> None:
        try:
            items = [self._substitute(t, env) for t in node.items]
        except _Unresolved:
            self.current = None
            return
        node = LayerStmt(node.rule, items, node.pos)
        if node.rule == "input":
            self._input(node, label, top_level)
            return
        for i, layer in enumerate(self.maker.make(node)):
            if i == 0 and label is not None:
                layer.name, layer.name_pos = scope.full(str(label)), pos_of(label)
            else:
                layer.name = scope.name(layer.kind)
            if isinstance(layer, Upsample) and layer.target is not None:
                self._size_reference(layer)
            if self.input is None and self.early is None:
                self.early = layer
            self.add(layer, [self.current] if self.current is not None else [])

    def _input(self, node: LayerStmt, label: Token | None, top_level: bool) -> None:
        (layer,) = self.maker.make(node)
        layer.name = str(label) if label is not None else "input"
        if self.input_dims is not None:
            layer.dims = self.input_dims
            layer.text = f"input {'x'.join(map(str, self.input_dims))}"
        layer.check_options(self.rep)
        if not top_level:
            self.rep.error(layer.pos, "`input` belongs at the top level, not in a group or block",
                           SpecError, hint="a spec starts with exactly one `input`")
        elif self.input is not None:
            self.rep.error(layer.pos, f"a second `input` (the first is on line {self.input.line})",
                           SpecError, hint="a spec has exactly one input")
        else:
            self.input = layer
            layer.infer((), self.rep)
            self.owner[layer.name] = layer
            self.layers.insert(0, layer) if self.early is not None else self.layers.append(layer)
            self.current = layer

    def add(self, layer: Layer, inputs: list[Layer]) -> None:
        """Append `layer`, reading `inputs`; check it and infer its shape."""
        if len(self.layers) >= MAX_LAYERS:
            self.rep.error(layer.pos, f"the network grows past {MAX_LAYERS:,} layers",
                           SpecError, hint="is a repeat count too large?")
            raise _Abort
        if layer.name in self.owner:
            first = self.owner[layer.name]
            how = lambda lay: "named" if lay.name_pos else "by default"  # noqa: E731
            self.rep.error(layer.name_pos or layer.pos,
                           f"layer name `{layer.name}` is used twice: {how(first)} on line "
                           f"{first.line} and {how(layer)} here", SpecError,
                           hint="rename one of them")
        else:
            self.owner[layer.name] = layer
        layer.inputs = inputs
        layer.check_options(self.rep)
        shapes = [i.output_shape for i in inputs]
        if inputs and None not in shapes:
            layer.infer_from(shapes, self.rep)
        if layer.output_shape is not None and max(layer.output_shape, default=0) > MAX_VALUE:
            self.rep.error(layer.pos, f"`{layer.name}` outputs {shape_str(layer.output_shape)}, "
                                      f"a size past {MAX_VALUE:.0e}", ShapeError,
                           hint="netspec stops at 10**18, so that every total stays exact")
            layer.output_shape = None   # the layers after it are not checked again
        self.layers.append(layer)
        self.current = layer

    # ---- composition -------------------------------------------------------------
    def _branch(self, node: Node, start: Layer | None, scope: Scope,
                env: dict[str, int]) -> Layer | None:
        """Build `node` reading `start`; return what it ends with."""
        self.current = start
        self.branch_inputs.append(start)
        try:
            self.statement(node, scope, env)
        finally:
            self.branch_inputs.pop()
        return self.current

    def _size_reference(self, layer: Upsample) -> None:
        """The layer whose H×W `upsample ... to input|branch` takes."""
        if layer.target == "input":
            layer.reference = self.input
        elif self.branch_inputs:
            layer.reference = self.branch_inputs[-1]
        else:
            self.rep.error(layer.pos, "`upsample ... to branch` is outside any branch",
                           SpecError, hint="use it inside `concat`, `split` or `residual`, "
                                           "or write `to input` or `to HxW`")

    def _merge(self, merge: Merge, inputs: list[Layer], scope: Scope) -> None:
        """End paths that met: `merge` (add, concat, mul) reads `inputs`, named in `scope`."""
        merge.name = scope.name(merge.kind)
        self.add(merge, inputs)

    def _residual(self, node: Residual, scope: Scope, env: dict[str, int]) -> None:
        x = self.current
        body = self._branch(node.body, x, scope, env)
        if x is None or body is None or body is x:
            if body is x and x is not None:
                self.rep.error(node.pos, "a residual body has no layers", SpecError)
            return
        differ = x.output_shape != body.output_shape
        block_input = self._block_inputs[-1] if self._block_inputs else None
        projected = node.shortcut_kind == "shortcut" or node.shortcut_kind == "project" and differ
        channels = tuple(v.output_shape[-1] if v.output_shape else None for v in (x, body))
        self.residuals.append((node, dict(env), block_input, channels,
                               not differ if node.optional else projected))
        if node.optional and differ:
            return   # `residual?`: no skip connection where shapes differ
        shortcut = x
        if projected:
            shortcut = self._branch(node.shortcut, x, scope, env)
            if shortcut is None:
                return
        add = Add(node.pos, "residual" + ("?" if node.optional else ""), shortcut is not x)
        self._merge(add, [body, shortcut], scope)

    def _concat(self, node: ConcatNode, scope: Scope, env: dict[str, int],
                outer: Scope) -> None:
        """`concat`, `add`, `mul`, or `split` (each branch starting from its own chunk of channels).

        `scope` names the branches (a labelled concat's own, numbering `[...]`
        branches), `outer` the concatenation and the chunks.
        """
        x = self.current
        starts: list[Layer | None] = [x] * len(node.branches)
        if node.split and x is not None:
            starts = []
            for i in range(len(node.branches)):
                chunk = Chunk(node.pos, f"split {i + 1}/{len(node.branches)}", i,
                              len(node.branches))
                chunk.name = outer.name("chunk")
                self.add(chunk, [x])
                starts.append(chunk if chunk.output_shape is not None else None)
        outputs = [self._branch(branch, start, scope, env) if start is not None else None
                   for branch, start in zip(node.branches, starts)]
        if x is None or None in outputs:
            self.current = None
            return
        if node.op != "concat" and len(outputs) != 2:
            self.rep.error(node.pos, f"`{node.op}` merges exactly two branches, not "
                                     f"{len(outputs)}", SpecError,
                           hint=f"nest them: `{node.op} {{ branch {{...}} branch {{ {node.op} "
                                f"{{ branch {{...}} branch {{...}} }} }} }}`")
            self.current = None
            return
        merge: Merge = (Add(node.pos, "add", False) if node.op == "add"
                        else Multiply(node.pos, "mul") if node.op == "mul"
                        else Concat(node.pos, "split" if node.split else "concat"))
        self._merge(merge, outputs, outer)

    def _gate(self, node: Gate, scope: Scope, env: dict[str, int], label: Token | None) -> None:
        """x × gate(x); a label prefixes the gate's layers (`se: gate {…}` → `se.fc1`)."""
        x = self.current
        inner = scope.child(label, "", False) if label is not None else scope
        gate = self._branch(node.body, x, inner, env)
        if x is None or gate is None or gate is x:
            if gate is x and x is not None:
                self.rep.error(node.pos, "a gate has no layers", SpecError,
                               hint="e.g. `gate { pool avg global; conv 1x1 x16 relu; "
                                    "conv 1x1 x{C} sigmoid }`")
            self.current = None
            return
        self._merge(Multiply(node.pos, "gate"), [x, gate], scope)

    def _aux(self, node: Aux, scope: Scope, env: dict[str, int], label: Token | None) -> None:
        """A side head: built from the current value, marked aux, then flow resumes at x."""
        x = self.current
        first = len(self.layers)
        inner = scope.child(label, "", node.body.indexed) if label is not None else scope
        if node.body.indexed and label is None:
            inner = scope.child(None, "seq", True)
        self.current = x
        for child in node.body.body:
            self.statement(child, inner, env)
        for layer in self.layers[first:]:
            layer.aux = True
        self.current = x

    def _call(self, node: Call, scope: Scope, env: dict[str, int], label: Token | None) -> None:
        name = str(node.name)
        block = self.blocks.get(name)
        if block is None:
            self.rep.error(pos_of(node.name), f"unknown layer or block `{name}`", SpecError,
                           hint=unknown_word_hint(name, list(self.blocks)))
            self.current = None
            return
        block.uses += 1
        if len(self.context) >= MAX_DEPTH:
            self.rep.error(node.pos, f"blocks call each other more than {MAX_DEPTH} deep "
                                     f"(is `{name}` recursive?)", SpecError)
            self.current = None
            return
        params = self._bind(block, node, env)
        if params is None:
            self.current = None
            return
        self._afford(block.body, 1, params, f"the call `{name}(...)`", node.pos)
        inner = scope.child(label, name, block.body.indexed)
        args = ", ".join(f"{k}={v}" for k, v in params.items())
        self.instances[inner.prefix] = f"{name}({args})"
        where = f"{node.pos.file}, " if node.pos.file else ""
        self.context.append(f"in `{inner.prefix}` = {name}({args}), {where}line {node.pos.line}")
        if block.pos.file not in self.rep.texts and block.source is not None:
            self.rep.add_source(block.pos.file, block.source)   # a reporter made after `use`
        text, self.maker.text = self.maker.text, self.rep.texts[block.pos.file]
        shape = self.current.output_shape if self.current is not None else None
        self._block_inputs.append(shape[-1] if shape else None)
        try:
            with in_file(block.pos.file):
                for child in block.body.body:
                    self.statement(child, inner, params)
        finally:
            self.maker.text = text
            self.context.pop()
            self._block_inputs.pop()

    def _bind(self, block: BlockDef, call: Call, env: dict[str, int]) -> dict[str, int] | None:
        """The call's parameters by name, or None after reporting why not."""
        names = [str(p) for p, _ in block.params]
        values: dict[str, int | None] = {}
        ok = True
        for i, (key, value) in enumerate(call.args):
            target = str(key) if key is not None else (names[i] if i < len(names) else None)
            where = pos_of(key if key is not None else value)
            if target is None or target not in names:
                hint = did_you_mean(str(key), names) if key is not None else None
                self.rep.error(where, f"`{block.name}` takes {len(names)} parameter"
                               f"{'s' if len(names) != 1 else ''}" +
                               (f" ({', '.join(names)}), not `{key}`" if key is not None else
                                f" ({', '.join(names)}), not {len(call.args)}"), SpecError,
                               hint=hint)
                ok = False
                continue
            if target in values:
                self.rep.error(where, f"parameter `{target}` given twice", SpecError)
                ok = False
            values[target] = self._int(value, env)
        for param, default in block.params if ok else ():
            if str(param) not in values:
                if default is None:
                    self.rep.error(call.pos, f"`{block.name}` needs a value for `{param}`",
                                   SpecError, hint=f"e.g. `{block.name}({param}=64)`")
                    ok = False
                else:
                    values[str(param)] = self._int(default, {})
        if not ok or None in values.values():
            return None
        return values  # type: ignore[return-value]

    # ---- the work a statement will do ---------------------------------------------
    def _afford(self, node: Node, times: int, env: dict[str, int], what: str = "",
                pos: Pos | None = None) -> None:
        """Refuse, before doing it, work that would take the spec past MAX_WORK statements.

        With `times` 0 only the statements done so far are checked; otherwise `node`'s
        cost (see `_cost`) `times` over is added to them first.
        """
        cost = self.work + times * self._cost(node, env, 0) if times else self.work
        if cost <= MAX_WORK:
            return
        where = pos or getattr(node, "pos", None) or Pos(1, 1)
        if what:
            self.rep.error(pos or where, f"{what} expands to more than {MAX_WORK:,} statements "
                           f"(layers, groups and calls)", SpecError,
                           hint="is a repeat count or a block's number of calls too large?")
        else:
            self.rep.error(where, f"the spec expands to more than {MAX_WORK:,} statements "
                           f"(layers, groups and calls)", SpecError,
                           hint="is a repeat count too large?")
        raise _Abort

    def _cost(self, node: Node, env: dict[str, int], depth: int) -> int:
        """Statements that building `node` expands to, counted without building (capped).

        Repeat counts and block arguments that cannot be known before building
        (they read C, H or W) count as 1, and so does what is nested past
        MAX_NESTING (an error anyway); the running count in `statement` catches
        those. `depth` is how deep in the syntax tree `node` is, calls included.
        """
        cap = MAX_WORK + 1
        if depth > MAX_NESTING:
            return 1   # too deep: `statement` reports it
        depth += 1
        if isinstance(node, Labeled):
            return min(cap, 1 + self._cost(node.item, env, depth))
        if isinstance(node, Group):
            return min(cap, 1 + sum(self._cost(c, env, depth) for c in node.body))
        if isinstance(node, Repeat):
            count = self._quiet_int(node.count, env)
            return min(cap, 1 + max(1 if count is None else count, 0) *
                       self._cost(node.item, env, depth))
        if isinstance(node, Residual):
            return min(cap, 2 + self._cost(node.body, env, depth) +
                       (self._cost(node.shortcut, env, depth) if node.shortcut is not None else 0))
        if isinstance(node, ConcatNode):
            return min(cap, 2 + sum(self._cost(b, env, depth) for b in node.branches))
        if isinstance(node, Call):
            block = self.blocks.get(str(node.name))
            if block is None:
                return 1
            names = [str(p) for p, _ in block.params]
            args: dict[str, int] = {}
            for i, (key, value) in enumerate(node.args):
                target = str(key) if key is not None else names[i] if i < len(names) else None
                v = self._quiet_int(value, env)
                if target is not None and v is not None:
                    args[target] = v
            for param, default in block.params:
                if str(param) not in args and default is not None:
                    v = self._quiet_int(default, {})
                    if v is not None:
                        args[str(param)] = v
            key = (block.name, tuple(sorted(args.items())))
            if key not in self._costs:
                self._costs[key] = min(cap, 1 + self._cost(block.body, args, depth))
            return self._costs[key]
        return 1

    def _quiet_int(self, tok: Token, env: dict[str, int]) -> int | None:
        """The value of a number token when it is known before building, else None."""
        text = str(tok)
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        if text.startswith("$") and text[1:] in env:
            return env[text[1:]]
        if text.startswith("{") and re.search(r"\b[CHW]\b", text) is None:
            rep, self.rep = self.rep, Reporter("", None)   # its errors come when it is built
            try:
                return self._int(tok, env)
            finally:
                self.rep = rep
        return None

    # ---- numbers ------------------------------------------------------------------
    def _int(self, tok: Token, env: dict[str, int]) -> int | None:
        try:
            return int(self._substitute(tok, env))
        except _Unresolved:
            return None

    def _substitute(self, item: Any, env: dict[str, int]) -> Any:
        """`tok` with every `$param` and `{expression}` replaced by its value."""
        if not isinstance(item, Token) or ("$" not in item and "{" not in item):
            return item
        value = _PARAM.sub(lambda m: str(self._evaluate(m.group(1) or m.group(2), env, item)),
                           str(item))
        return Token.new_borrow_pos(item.type, value, item)

    def _evaluate(self, expr: str, env: dict[str, int], tok: Token) -> int:
        def fail(message: str, hint: str | None = None) -> None:
            self.rep.error(pos_of(tok), message, SpecError, hint=hint)
            raise _Unresolved

        shape = self.current.output_shape if self.current is not None else None

        def value(node: ast.AST) -> int:
            if isinstance(node, ast.Constant) and type(node.value) is int:
                return node.value
            if isinstance(node, ast.Name):
                if node.id in env:
                    return env[node.id]
                if node.id in ("C", "H", "W"):
                    if shape is None and self.input is None:
                        fail(f"`{node.id}` reads the incoming shape, but this layer comes "
                             f"before `input`", "start the spec with its `input`")
                    if shape is None:
                        raise _Unresolved   # the shape is unknown after an earlier error
                    if len(shape) != 3 and node.id != "C":
                        fail(f"`{node.id}` is not defined: the input here is a vector")
                    return shape[-1] if node.id == "C" else shape["HW".index(node.id)]
                fail(f"unknown parameter `{node.id}`" + ("" if env else
                                                         " (parameters exist only in blocks)"),
                     did_you_mean(node.id, [*env, "C", "H", "W"]))
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
                v = value(node.operand)
                return -v if isinstance(node.op, ast.USub) else v
            if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
                a, b = value(node.left), value(node.right)
                if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and b == 0:
                    fail(f"division by zero in `{{{expr}}}`")
                result = _OPS[type(node.op)](a, b)
                if abs(result) > MAX_VALUE:
                    fail(f"`{{{expr}}}` grows past {MAX_VALUE:.0e}, more than any size could be")
                return result
            if isinstance(node, ast.IfExp):   # `2 if j == 0 else 1`, as torchvision's stages
                return value(node.body) if value(node.test) else value(node.orelse)
            if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
                left, result = value(node.left), 1
                for op, right_node in zip(node.ops, node.comparators):
                    right = value(right_node)
                    result &= int(_COMPARE[type(op)](left, right))
                    left = right
                return result
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                a, b = value(node.left), value(node.right)
                if b == 0 or a % b:
                    fail(f"`{{{expr}}}` is not a whole number ({a} / {b})",
                         "use `//` to round down")
                return a // b
            fail(f"cannot evaluate `{expr}`: use whole numbers, parameters, C, H, W, "
                 f"+ - * / // % ( ), comparisons and `A if CONDITION else B`")
            raise AssertionError  # fail() raised

        if len(expr) > MAX_EXPRESSION:   # before parsing it: no RecursionError, no slow parse
            fail(f"an expression of {len(expr):,} characters is longer than the "
                 f"{MAX_EXPRESSION} netspec reads", "compute the value in parts, or write the "
                                                    "number")
        try:
            tree = ast.parse(expr.replace("$", "").strip(), mode="eval")   # `{$c*4}` too
        except SyntaxError:
            fail(f"`{{{expr}}}` is not an expression")
        return value(tree.body)
