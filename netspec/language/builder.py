"""From the spec tree to the built network: expand blocks and repeats, name, infer shapes.

The builder walks the statements in order, keeping the value that flows (the last
layer built), and builds the tree of netspec.ir.tree as it goes: each statement's
layers, each group, block instance, residual and merge. Shapes are inferred as each
layer is built, so that a `project` shortcut is used exactly when a residual body
changes the shape, and `$params` / `{C // 2}` can read the incoming shape.

Joins (residuals, branches, gates, aux heads) are built by joins.py, block
definitions and calls by calls.py, named values and the joins that read them
(`concat(a, b)`, `from a`) by named.py. Naming follows the structure (names.py); numbers
are resolved in the scope of the block being expanded (values.py); the work a
statement will do is counted before it is done (budget.py).
"""

from __future__ import annotations

from ..ir import tree as ir
from ..kinds import registry
from ..kinds.base import Input, Layer, shape_str
from ..kinds.resample import Upsample
from ..source.diagnostics import Reporter, ShapeError, SpecError
from ..source.limits import MAX_VALUE, MAX_WORK
from ..source.pos import Pos
from ..syntax import tree as st
from ..syntax.words import Word
from .budget import MAX_NESTING, Budget
from .calls import Calls
from .joins import Joins
from .named import NamedValues, ValueScope
from .names import Names, names
from .values import BuildReading, Unresolved, Values, resolve, resolve_label

MAX_LAYERS = MAX_WORK     # layers made (MAX_WORK: statements expanded, see limits.py)


class _Abort(Exception):
    """The spec outgrew a limit (already reported): building stops."""


class Builder(Calls, Joins, NamedValues):
    """Builds the network of one spec, reporting errors to `rep`."""

    def __init__(self, rep: Reporter, input_dims: tuple[int, ...] | None = None) -> None:
        self.rep = rep
        self.input_dims = input_dims        # replaces the size the spec's `input` gives
        self.layers: list[Layer] = []
        self.owner: dict[str, Layer] = {}
        self.blocks: dict[str, st.BlockDef] = {}
        self.current: Layer | None = None
        self.input: Input | None = None
        self.early: Layer | None = None     # the first layer written before `input`
        self.context: list[str] = []
        self.statements: list[st.Node] = []      # the top level, for code generators
        self.tree = ir.Seq()
        self._seq = self.tree                   # where built nodes go
        self._block_inputs: list[int | None] = []   # channels each open block call reads
        self.nesting = 0
        self.branch_inputs: list[Layer | None] = []   # what each enclosing branch reads
        self.value_scopes: list[ValueScope] = []   # named values: the top level, block calls
        self.hidden: dict[str, tuple[str, int]] = {}  # names of instances left: where, line
        self._in_aux = False                       # building an aux head
        self.left: dict[int, str] = {}             # values a join or `from` left: why
        self.budget = Budget(self.blocks)
        rep.context = self.context

    # ---- entry -------------------------------------------------------------------
    def build(self, nodes: list[st.Node]) -> list[Layer]:
        """All layers of the spec in order, input first; errors go to the reporter."""
        for node in nodes:
            if isinstance(node, st.BlockDef):
                self._define(node)
        statements = self.statements = [n for n in nodes if not isinstance(n, st.BlockDef)]
        top = names()
        self._open_values(statements, "the top level")
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
        elif self.layers and self.layers[-1].aux and not self.rep.errors:
            self.rep.error(self.layers[-1].pos, "the network ends inside an `aux` head: its "
                           "output would be a head that is not computed at inference",
                           SpecError, hint="an `aux` head branches off; the main path "
                                           "continues after it")
        if not self.rep.errors:
            self.unread_warnings()
        for block in self.blocks.values():
            if not block.uses and block.pos.file is None:   # a library's blocks may go unused
                params = ", ".join(p.text for p, _ in block.params)
                self.rep.warning(block.pos, "unused-block",
                                 f"block `{block.name.text}` is defined but never used",
                                 hint=f"call it as a statement, e.g. `{block.name.text}({params})`")
        return self.layers

    def _values(self, env: dict[str, int]) -> Values:
        """The scope numbers are evaluated in here."""
        shape = self.current.output_shape if self.current is not None else None
        return Values(env, shape, self.input is not None)

    def _label(self, label: Word, scope: Names[int], env: dict[str, int]) -> str | None:
        """The label with its `$params` filled in (None if one is unknown, reported).

        Inside `[ ... ]` a label that is a number sets the item's position: the
        numbering continues after it, and may skip numbers but never go back.
        """
        try:
            label = resolve_label(label, self._values(env), self.rep)
        except Unresolved:
            return None
        if scope.indexed and label.text.isdigit():
            number = int(label.text)
            if number < scope.next_index:
                taken = scope.next_index - 1
                self.rep.error(label.pos, f"sequence number {number} "
                               + ("is already taken" if number == taken else "goes backwards")
                               + f": the items before it in this `[ ... ]` are numbered up to "
                               f"{taken}", SpecError,
                               hint=f"numbers in `[ ... ]` only go forward; without a label "
                                    f"this item would be number {scope.next_index}")
                return None
            scope.at(number)
        return label.text

    # ---- statements --------------------------------------------------------------
    def statement(self, node: st.Node, scope: Names[int], env: dict[str, int], *,
                  label: str | None = None, label_pos: Pos | None = None,
                  top_level: bool = False) -> None:
        """Build one statement in `scope`, with `env` the enclosing block's parameters."""
        self.nesting += 1
        self.budget.work += 1
        if self.nesting > MAX_NESTING:
            self.rep.error(node.pos or Pos(1, 1), f"groups, repeats and block calls "
                           f"are nested more than {MAX_NESTING} deep", SpecError)
            raise _Abort
        if self.rep.dropped:
            raise _Abort   # more errors than are shown: enough to act on
        self._afford(node, 0, env)
        try:
            self._statement(node, scope, env, label, label_pos, top_level)
        finally:
            self.nesting -= 1

    def _statement(self, node: st.Node, scope: Names[int], env: dict[str, int],
                   label: str | None, label_pos: Pos | None, top_level: bool) -> None:
        if isinstance(node, st.Labeled):
            name = self._label(node.label, scope, env)
            if name is None:
                self.current = None
                return
            self.statement(node.item, scope, env, label=name, label_pos=node.label.pos,
                           top_level=top_level)
            if not name.isdigit() and not isinstance(node.item, st.Aux):
                self._name_value(name, node.label.pos)   # a label names the value too
        elif isinstance(node, st.Assign):
            self._assign(node, scope, env)
        elif isinstance(node, st.Join):
            self._join(node, scope, env, label, label_pos)
        elif isinstance(node, st.From):
            self._from(node, env)
        elif isinstance(node, st.LayerStmt):
            self._layer_statement(node, scope, env, label, label_pos, top_level)
        elif isinstance(node, st.Group):
            inner = (scope.child(label, "", node.indexed) if label is not None
                     else scope.child(None, "seq", True) if node.indexed else scope)
            with self._into(ir.Seq(prefix=inner.prefix, indexed=node.indexed, syntax=node,
                                   env=env)):
                for child in node.body:
                    self.statement(child, inner, env)
        elif isinstance(node, st.Repeat):
            self._repeat(node, scope, env, label)
        elif isinstance(node, st.Residual):
            self._residual(node, scope, env)
        elif isinstance(node, st.Merge):
            self._branches(node, scope.child(label, "", True) if label is not None else scope,
                           env, scope)
        elif isinstance(node, st.Gate):
            self._gate(node, scope, env, label)
        elif isinstance(node, st.Aux):
            self._aux(node, scope, env, label)
        elif isinstance(node, st.Call):
            self._call(node, scope, env, label)
        elif isinstance(node, st.BlockDef):
            self.rep.error(node.pos, "a block is defined inside a group", SpecError,
                           hint="define blocks at the top level of the spec")
        elif isinstance(node, st.Use):
            self.rep.error(node.pos, "`use` belongs at the top level of a file", SpecError)

    def _into(self, seq: ir.Seq) -> _Into:
        """Build into `seq` (added to the current sequence) while inside the `with`."""
        self._seq.items.append(seq)
        return _Into(self, seq)

    def _inside(self, seq: ir.Seq) -> _Into:
        """Build into `seq` (already placed) while inside the `with`."""
        return _Into(self, seq)

    def _repeat(self, node: st.Repeat, scope: Names[int], env: dict[str, int],
                label: str | None) -> None:
        try:
            (count,) = resolve(node.count, self._values(env), self.rep)
        except Unresolved:
            count = None
        if count is not None and count < 0:
            self.rep.error(node.count.pos, f"repeat count must not be negative, not {count}",
                           ShapeError)
        inner = scope.child(label, "", True) if label is not None else scope
        var = node.var.text if node.var is not None else None
        if node.var is not None and not self._parameter_name(node.var, "a repeat's counter",
                                                              env):
            return
        if count:
            self._afford(node.item, count, env, f"`repeat {count}`", node.pos)
        seq = ir.Seq(prefix=inner.prefix, indexed=True, syntax=node, env=env) \
            if label is not None else None
        with self._into(seq) if seq is not None else _Into(self, self._seq):
            for i in range(max(count or 0, 0)):
                self.statement(node.item, inner, env if var is None else {**env, var: i})

    def _read(self, stmt: st.LayerStmt, env: dict[str, int]) -> list[Layer]:
        """The layers of one statement (Unresolved when one of its numbers has no value)."""
        kind = registry.reader(stmt.keyword)
        text = self.rep.texts.get(stmt.pos.file, "")
        reading = BuildReading(stmt, self.rep, self._values(env), text,
                               lambda act: self._read(act, env))
        reading.resolve_all()
        layers = kind.read(reading)
        for layer, syntax in zip(layers, (stmt, stmt.act)):
            layer.syntax, layer.env = syntax, env
        return layers

    def _layer_statement(self, node: st.LayerStmt, scope: Names[int], env: dict[str, int],
                         label: str | None, label_pos: Pos | None, top_level: bool) -> None:
        try:
            made = self._read(node, env)
        except Unresolved:
            self.current = None
            return
        if node.rule == "input":
            self._input(made[0], label, top_level)
            return
        for i, layer in enumerate(made):
            if i == 0 and label is not None:
                layer.name, layer.name_pos = scope.full(label), label_pos
            else:
                layer.name = scope.name(layer.kind)
            if isinstance(layer, Upsample) and layer.target is not None:
                self._size_reference(layer)
            if self.input is None and self.early is None:
                self.early = layer
            self.add(layer, [self.current] if self.current is not None else [])

    def _input(self, layer: Input, label: str | None, top_level: bool) -> None:
        layer.name = label if label is not None else "input"
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
            self._seq.items.insert(0, layer) if self.early is not None \
                else self._seq.items.append(layer)
            self.current = layer
            self._name_value(layer.name, layer.pos)   # `concat(input, …)` reads it

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
        self._seq.items.append(layer)
        self.current = layer

    # ---- the work a statement will do ---------------------------------------------
    def _afford(self, node: st.Node, times: int, env: dict[str, int], what: str = "",
                pos: Pos | None = None) -> None:
        """Refuse, before doing it, work that would take the spec past MAX_WORK statements.

        With `times` 0 only the statements done so far are checked; otherwise `node`'s
        cost `times` over is added to them first.
        """
        if not self.budget.over(node, times, env):
            return
        where = pos or node.pos or Pos(1, 1)
        if what:
            self.rep.error(where, f"{what} expands to more than {MAX_WORK:,} statements "
                           f"(layers, groups and calls)", SpecError,
                           hint="is a repeat count or a block's number of calls too large?")
        else:
            self.rep.error(where, f"the spec expands to more than {MAX_WORK:,} statements "
                           f"(layers, groups and calls)", SpecError,
                           hint="is a repeat count too large?")
        raise _Abort


class _Into:
    """While inside, the builder adds what it builds to `seq`."""

    def __init__(self, builder: Builder, seq: ir.Seq) -> None:
        self.builder, self.seq = builder, seq

    def __enter__(self) -> ir.Seq:
        self.outer, self.builder._seq = self.builder._seq, self.seq
        return self.seq

    def __exit__(self, *exc: object) -> None:
        self.builder._seq = self.outer
