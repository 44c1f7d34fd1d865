"""Where paths meet, in generated PyTorch code: residuals, merges and gates.

Each is written into a `forward` with explicit variables (`identity = x` … `x = x +
identity`); a `project` shortcut becomes a module that exists only where the body
changes the shape, its condition written from the block's parameters and checked
against every instance the builder made (Writer.as_built).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...kinds import Add, Chunk, Concat, Multiply, registry
from ...language.names import Names
from ...syntax import expr as E
from ...syntax.tree import Gate, Group, Labeled, LayerStmt, Merge, Residual
from .symbols import CH, Lin, Unsupported, condition, default_name, simplify

if TYPE_CHECKING:
    from .writer import Writer


def negate(cond: E.Expr) -> E.Expr:
    """not `cond`, written plainly for the usual `s == 1` (`s != 1`)."""
    if isinstance(cond, E.Compare) and len(cond.rest) == 1 and cond.rest[0][0] == "==":
        return E.Compare(cond.first, (("!=", cond.rest[0][1]),))
    return simplify(E.Not(cond))


def _all(conds: list[E.Expr], op: str, empty: int) -> E.Expr:
    return E.Num(empty) if not conds else conds[0] if len(conds) == 1 else E.Logic(op, tuple(conds))


class Joins:
    """The residual, merge and gate writers of `Writer`."""

    def residual(self: Writer, node: Residual, names: Names[Lin], target: str) -> None:
        if not self.explicit:
            raise Unsupported("a residual inside a `[ ]` group or a loop (put it in a block)")
        c_in = self.local("c_in", self.cur)
        c_in_line = len(self.cls.init) - 1
        identity = self.fresh("identity")
        self.fline(f"{identity} = x")
        outer, windows = self.gen.windows, []
        self.gen.windows = windows
        self.branch_inputs.append(identity)
        self.body(node.body.body, names, target)
        self.branch_inputs.pop()
        self.gen.windows = outer
        if outer is not None:   # a residual keeps H×W exactly when its body does
            outer.extend(windows)
        out = self.cur
        if out != CH and "ch" in out.names():
            out = self.channels()
        conds = [x for x in map(simplify, [E.Compare(out, (("==", c_in),)),
                                           *dict.fromkeys(windows)]) if x != E.Num(1)]
        same = _all(conds, "and", 1)
        differs = _all([negate(x) for x in conds], "or", 0)
        if node.optional:
            same = self.as_built(node, same, c_in, out)
        elif node.shortcut_kind == "project":
            differs = self.as_built(node, differs, c_in, out)
        if node.shortcut_kind is None:
            if not node.optional or same == E.Num(1):
                # a whole word: `c_in2`, a merge's input width inside the body, is not it
                used = re.compile(rf"\b{re.escape(c_in.id)}\b")
                if not any(used.search(line) for line in self.cls.init[c_in_line + 1:]):
                    del self.cls.init[c_in_line]   # a plain identity: c_in is never read
                self.fline(f"x = x + {identity}")
            elif same == E.Num(0):   # never added here
                self.cls.forward.remove("    " * self.fwd_indent + f"{identity} = x")
            else:
                flag = self.fresh("skip")
                self.line(f"self.{flag} = {condition(same)}")
                self.fline(f"if self.{flag}:")
                self.fline(f"    x = x + {identity}")
            names.take(Add.kind)
            return
        label, group = (node.shortcut.label.text, node.shortcut.item) \
            if isinstance(node.shortcut, Labeled) else (None, node.shortcut)
        if label is None or not label.isidentifier():
            raise Unsupported("an unlabelled projection (label it: `project downsample: [ … ]`)"
                              if label is None else f"a projection labelled `{label}`")
        saved, self.cur = self.cur, c_in
        explicit, self.explicit = self.explicit, False
        if differs == E.Num(0) and node.shortcut_kind == "project":
            pass   # never used here: no module
        elif node.shortcut_kind == "project" and differs != E.Num(1):
            self.line(f"if {condition(differs)}:")
            self.indent += 1
            self.line(f"self.{label} = {self.module_of(group)}")
            self.indent -= 1
            self.line("else:")
            self.line(f"    self.{label} = None")
            self.fline(f"if self.{label} is not None:")
            self.fline(f"    {identity} = self.{label}({identity})")
        else:
            self.line(f"self.{label} = {self.module_of(group)}")
            self.fline(f"{identity} = self.{label}({identity})")
        self.explicit = explicit
        self.cur = saved
        self.fline(f"x = x + {identity}")
        names.take(Add.kind)

    def gate(self: Writer, node: Gate, names: Names[Lin], target: str, label: str | None) -> None:
        """`x = inp * gate(inp)`: the gate's modules under its label, or in this scope."""
        if not self.explicit:
            raise Unsupported("a gate inside a `[ ]` group or a loop (put it in a block)")
        c_in, vector = self.local("c_in", self.cur), self.vector
        inp = self.fresh("inp")
        self.fline(f"{inp} = x")
        outer, self.gen.windows = self.gen.windows, None   # the product keeps the input's H×W
        if label is not None:
            self.group(node.body, label, target)
        else:
            self.body(node.body.body, names, target)
        self.gen.windows = outer
        self.fline(f"x = {inp} * x")
        self.cur, self.vector = c_in, vector
        names.take(Multiply.kind)

    def merge(self: Writer, node: Merge, names: Names[Lin], target: str,
              merge_label: str | None = None) -> None:
        """concat, split, add or mul: each branch from the input (a split's, its own chunk)."""
        if not self.explicit:
            raise Unsupported("a concat inside a `[ ]` group or a loop (put it in a block)")
        c_in = self.local("c_in", self.cur)
        n = len(node.branches)
        kind = registry.BY_MERGE_STATEMENT[node.op]
        split = node.op == Chunk.MADE_BY
        inp = self.fresh("chunks" if split else "inp")
        starts = [inp] * n
        runs: list[E.Expr] = [c_in] * n   # the channels each branch reads
        if not split:
            self.fline(f"{inp} = x")
        elif node.runs is not None:   # runs of the sizes written (C: the input's channels)
            runs = [self.symbolic(e) for e in node.runs.exprs]
            sizes = f"[{', '.join(self.py(r) for r in runs)}]"
            if not all(isinstance(r, E.Num) for r in runs):   # forward reads them from self
                attribute = self.fresh("runs")
                self.line(f"self.{attribute} = {sizes}")
                sizes = f"self.{attribute}"
            self.fline(f"{inp} = torch.split(x, {sizes}, 1)")
            starts = [f"{inp}[{i}]" for i in range(n)]
            runs = [self.local("c_run", r) for r in runs]
        else:   # each branch reads its own run of channels
            self.fline(f"{inp} = torch.chunk(x, {n}, 1)")
            starts = [f"{inp}[{i}]" for i in range(n)]
            self.line(f"{c_in.id} = {c_in.id} // {n}")
        if merge_label is not None:   # unlabelled `[ ]` branches: label.0, label.1, …
            if not merge_label.startswith("'") or not merge_label[1:-1].isidentifier():
                raise Unsupported(f"a concat labelled {merge_label}")
            self.line(f"self.{merge_label[1:-1]} = nn.ModuleList()")
        outs: list[str] = []
        chans: list[E.Expr] = []
        for i, (branch, start, run) in enumerate(zip(node.branches, starts, runs)):
            label = None
            if isinstance(branch, Labeled):
                label, branch = self.label(branch.label.text, names), branch.item
            self.cur = run
            if not branch.body:
                outs.append(start)
                chans.append(run)
                continue
            if outs or self.cls.forward[-1].strip() != f"{start} = x":
                self.fline(f"x = {start}")
            self.branch_inputs.append(start)
            body, resize = branch, None
            last = branch.body[-1]
            if isinstance(last, LayerStmt) and (branch.indexed or label) and \
                    registry.reader(last.keyword).writes_forward(last):
                # torchvision's ASPPPooling: a Sequential, then back to the branch's size
                body = Group(branch.pos, branch.body[:-1], branch.indexed)
                resize = last
            if merge_label is not None:
                if label is not None or not branch.indexed:
                    raise Unsupported("a labelled or `{ }` branch in a labelled concat")
                explicit, self.explicit = self.explicit, False
                module = self.module_of(body)
                self.explicit = explicit
                self.line(f"self.{merge_label[1:-1]}.append({module})")
                self.fline(f"x = self.{merge_label[1:-1]}[{i}](x)")
            elif label is not None or branch.indexed:
                self.group(body, label if label is not None else default_name(names, "seq"),
                           target)
            else:
                self.body(branch.body, names, target)
            if resize is not None:
                self.layers(resize, Names("", True, Lin(), Lin(1)), target, None)
            self.branch_inputs.pop()
            out = self.fresh("y")
            self.fline(f"{out} = x")
            outs.append(out)
            if label is not None and isinstance(node.branches[i], Labeled):
                self.name_value(node.branches[i].label.text, out)
            if kind is not Concat:   # add, mul: the channels are the last branch's
                chans.append(self.cur)
                continue
            chans.append(self.local("c_out", self.cur))
        if kind is Concat:
            self.fline(f"x = torch.cat([{', '.join(outs)}], 1)")
            total = chans[0]
            for c in chans[1:]:
                total = E.Bin("+", total, c)
            self.cur = total
        else:   # add / mul: torch broadcasts a 1×1×C branch over H×W
            self.fline(f"x = {(' + ' if kind is Add else ' * ').join(outs)}")
            self.cur = chans[-1]
        names.take(kind.kind)
