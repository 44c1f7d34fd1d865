"""A block call in generated PyTorch code: its class, constructed with the call's arguments.

The channels a call gives, and whether it keeps H×W, are the formulas its class
computed (TorchGenerator.out_channels, .keeps), with the call's arguments put in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...syntax import expr as E
from ...syntax.tree import Call
from .symbols import CH, Unsupported, simplify

if TYPE_CHECKING:
    from .writer import Writer


def substitute(formula: E.Expr | None, values: dict[str, E.Expr]) -> E.Expr | None:
    """A class's formula for one call (its parameters replaced), or None if it reads
    anything else."""
    if formula is None or not formula.names() <= set(values):
        return None
    return simplify(formula.substitute(values.get))


class Calls:
    """The block-call writer of `Writer`."""

    def call(self: Writer, node: Call, name: str, target: str) -> None:
        block = self.gen.blocks.get(node.name.text)
        if block is None:
            raise Unsupported(f"unknown block `{node.name.text}`")
        cls = self.gen.block_class(block)
        args = [self.cur.python()]
        values: dict[str, E.Expr] = {"in_channels": self.cur}
        params = [p.text for p, _ in block.params]
        for n, (key, value) in enumerate(node.args):
            arg = self.symbolic(value.exprs[0]) if value.symbolic else value.exprs[0]
            args.append(f"{key.text}={arg.python()}" if key is not None else arg.python())
            values[key.text if key is not None else params[n]] = arg
        for p, default in block.params:
            if default is not None:
                values.setdefault(p.text, default.exprs[0])
        module = f"{cls.name}({', '.join(args)})"
        if self.gen.windows is not None:   # in a residual body: does the call keep H×W?
            for cond in self.gen.keeps[cls.name]:
                keeps = substitute(cond, values)
                if keeps is None:
                    raise Unsupported(f"a call of `{block.name.text}` in a residual whose "
                                      f"shortcut depends on the shape")
                self.gen.windows.append(keeps)
        out = substitute(self.gen.out_channels.get(cls.name), values)
        if cls.takes_branch:   # forward(x, branch): only where the caller writes forward
            if self.capture is not None or not self.explicit or not self.branch_inputs:
                raise Unsupported(f"a call of `{block.name.text}` (its `to branch` needs the "
                                  f"input of a branch around the call)")
            ref = self.register(target, name, module)
            self.fline(f"x = {ref}(x, {self.branch_inputs[-1]})")
            self.cur = out if out is not None else E.Name(f"{ref}.out_channels")
        elif out is not None:
            self.apply(self.register(target, name, module))
            self.cur = out
        else:
            var = self.fresh("block")
            self.line(f"{var} = {module}")
            self.apply(self.register(target, name, var))
            self.line(f"ch = {var}.out_channels")
            self.cur = CH
        self.vector = self.gen.ends_vector.get(cls.name, self.vector)
