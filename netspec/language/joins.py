"""How the builder joins paths: residuals, branches merged by concat/split/add/mul, gates
and aux heads. Each builds its node of the IR tree (netspec.ir.tree) around the
sequences of its branches, then the merge layer that ends them.

A mixin of the Builder (builder.py), which holds the state these read: the value that
flows (`current`), the sequence being built into, and the reporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import tree as ir
from ..kinds import registry
from ..kinds.base import Layer
from ..kinds.channels import Chunk
from ..kinds.merges import Add, Merge, Multiply
from ..kinds.resample import Upsample
from ..source.diagnostics import SpecError
from ..syntax import tree as st
from .names import Names
from .values import Unresolved, resolve

if TYPE_CHECKING:
    from .builder import Builder


class Joins:
    """Residuals, merged branches, gates and aux heads (see the module's docstring)."""

    def _branch(self: Builder, node: st.Node, start: Layer | None, scope: Names[int],
                env: dict[str, int]) -> tuple[Layer | None, ir.Seq]:
        """Build `node` reading `start`; return what it ends with, and its sequence."""
        self.current = start
        self.branch_inputs.append(start)
        seq = ir.Seq(prefix=scope.prefix, syntax=node, env=env)
        outer, self._seq = self._seq, seq
        try:
            self.statement(node, scope, env)
        finally:
            self.branch_inputs.pop()
            self._seq = outer
        return self.current, seq

    def _size_reference(self: Builder, layer: Upsample) -> None:
        """The layer whose H×W `upsample ... to input|branch` takes."""
        if layer.target == "input":
            layer.reference = self.input
        elif self.branch_inputs:
            layer.reference = self.branch_inputs[-1]
        else:
            self.rep.error(layer.pos, "`upsample ... to branch` is outside any branch",
                           SpecError, hint="use it inside `concat`, `split` or `residual`, "
                                           "or write `to input` or `to HxW`")

    def _merge(self: Builder, merge: Merge, inputs: list[Layer], scope: Names[int],
               node: st.Node, env: dict[str, int]) -> None:
        """End paths that met: `merge` (add, concat, mul) reads `inputs`, named in `scope`."""
        merge.name = scope.name(merge.kind)
        merge.syntax, merge.env = node, env
        self.add(merge, inputs)
        self._seq.items.pop()   # the merge belongs to its residual or branches node

    def _residual(self: Builder, node: st.Residual, scope: Names[int], env: dict[str, int]) -> None:
        x = self.current
        built = ir.Residual(x, syntax=node, env=env)
        self._seq.items.append(built)
        body, built.body = self._branch(node.body, x, scope, env)
        if x is None or body is None or body is x:
            if body is x and x is not None:
                self.rep.error(node.pos, "a residual body has no layers", SpecError)
            return
        differ = x.output_shape != body.output_shape
        built.block_channels = self._block_inputs[-1] if self._block_inputs else None
        built.projected = node.shortcut_kind == "shortcut" or \
            node.shortcut_kind == "project" and differ
        built.channels = tuple(v.output_shape[-1] if v.output_shape else None  # type: ignore[assignment]
                               for v in (x, body))
        if node.optional and differ:
            built.skipped = True
            return   # `residual?`: no skip connection where shapes differ
        shortcut = x
        if built.projected:
            shortcut, built.shortcut = self._branch(node.shortcut, x, scope, env)
            if shortcut is None:
                return
        add = Add(node.pos, "residual" + ("?" if node.optional else ""), shortcut is not x)
        self._merge(add, [body, shortcut], scope, node, env)
        built.add = add

    def _branches(self: Builder, node: st.Merge, scope: Names[int], env: dict[str, int],
                  outer: Names[int]) -> None:
        """`concat`, `add`, `mul`, or `split` (each branch starting from its own chunk:
        equal runs, or `split N,N,… { … }`'s sizes, evaluated with C the input's channels).

        `scope` names the branches (a labelled concat's own, numbering `[...]`
        branches), `outer` the merge and the chunks.
        """
        x = self.current
        built = ir.Branches(node.op, x, syntax=node, env=env)
        self._seq.items.append(built)
        starts: list[Layer | None] = [x] * len(node.branches)
        if node.op == Chunk.MADE_BY and x is not None:
            try:
                runs = resolve(node.runs, self._values(env), self.rep) \
                    if node.runs is not None else None
            except Unresolved:
                self.current = None
                return
            starts = []
            held, self._seq = self._seq, ir.Seq()
            for i in range(len(node.branches)):
                chunk = Chunk(node.pos, f"split {i + 1}/{len(node.branches)}", i,
                              len(node.branches), runs)
                if node.runs is not None and node.runs.pos is not None:
                    chunk.options = {"runs": node.runs.pos}
                chunk.name = outer.name(Chunk.kind)
                chunk.syntax, chunk.env = node, env
                self.add(chunk, [x])
                built.chunks.append(chunk)
                starts.append(chunk if chunk.output_shape is not None else None)
            self._seq = held
        outputs = []
        for branch, start in zip(node.branches, starts):
            if start is None:
                outputs.append(None)
                continue
            out, seq = self._branch(branch, start, scope, env)
            outputs.append(out)
            built.branches.append(seq)
        if x is None or None in outputs:
            self.current = None
            return
        kind = registry.BY_MERGE_STATEMENT[node.op]
        least, most = kind.branch_counts
        if len(outputs) < least or most is not None and len(outputs) > most:
            words = {1: "one", 2: "two"}
            exactly = ("exactly " if least == most else "at least ") + words.get(least, str(least))
            self.rep.error(node.pos, f"`{node.op}` merges {exactly} branches, not "
                                     f"{len(outputs)}", SpecError,
                           hint=f"nest them: `{node.op} {{ branch {{...}} branch {{ {node.op} "
                                f"{{ branch {{...}} branch {{...}} }} }} }}`" if most else
                           f"give it a second branch (`branch {{}}` is the input itself)")
            self.current = None
            return
        merge: Merge = kind.of_branches(node.pos, node.op)
        self._merge(merge, outputs, outer, node, env)   # type: ignore[arg-type]
        built.merge = merge

    def _gate(self: Builder, node: st.Gate, scope: Names[int], env: dict[str, int],
              label: str | None) -> None:
        """x × gate(x); a label prefixes the gate's layers (`se: gate {…}` → `se.fc1`)."""
        x = self.current
        inner = scope.child(label, "", False) if label is not None else scope
        built = ir.Gate(x, syntax=node, env=env)
        self._seq.items.append(built)
        gate, built.body = self._branch(node.body, x, inner, env)
        if x is None or gate is None or gate is x:
            if gate is x and x is not None:
                self.rep.error(node.pos, "a gate has no layers", SpecError,
                               hint="e.g. `gate { pool avg global; conv 1x1 x16 relu; "
                                    "conv 1x1 x{C} sigmoid }`")
            self.current = None
            return
        mul = Multiply(node.pos, "gate")
        self._merge(mul, [x, gate], scope, node, env)
        built.mul = mul

    def _aux(self: Builder, node: st.Aux, scope: Names[int], env: dict[str, int],
             label: str | None) -> None:
        """A side head: built from the current value, marked aux, then flow resumes at x."""
        x = self.current
        first = len(self.layers)
        inner = scope.child(label, "", node.body.indexed) if label is not None else scope
        if node.body.indexed and label is None:
            inner = scope.child(None, "seq", True)
        built = ir.Aux(x, ir.Seq(prefix=inner.prefix, indexed=node.body.indexed),
                       syntax=node, env=env)
        self._seq.items.append(built)
        self.current = x
        was, self._in_aux = self._in_aux, True
        try:
            with self._inside(built.body):
                for child in node.body.body:
                    self.statement(child, inner, env)
        finally:
            self._in_aux = was
        for layer in self.layers[first:]:
            layer.aux = True
        self.current = x
