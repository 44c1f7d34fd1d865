"""How much a statement will expand to, known before it is expanded.

A spec may expand to at most MAX_WORK statements (layers, groups and calls,
repeats and block calls included). `Budget.cost` counts what a statement will
expand to without building it, so `repeat 1000000000 { }` or blocks that call
each other twice per level are refused at once, at the statement responsible.
"""

from __future__ import annotations

from ..source.limits import MAX_WORK
from ..syntax.expr import Env, EvalError
from ..syntax.tree import Assign, BlockDef, Call, Group, Labeled, Merge, Node, Repeat, Residual
from ..syntax.words import Word

MAX_NESTING = 100         # groups, repeats and calls within each other


def quiet_value(word: Word, env: dict[str, int]) -> int | None:
    """A one-number word's value when it is known before building (it reads no C, H or W
    and every name it reads is a parameter here), else None."""
    if len(word.parts) != 1:
        return None
    expr = word.parts[0].expr
    if expr.names() & {"C", "H", "W"}:
        return None
    try:
        return expr.value(Env(env))
    except EvalError:
        return None


class Budget:
    """Counts statements expanded, against MAX_WORK; caches what each block call costs."""

    def __init__(self, blocks: dict[str, BlockDef]) -> None:
        self.blocks = blocks
        self.work = 0                               # statements expanded so far
        self._costs: dict[tuple, int] = {}          # (block, its arguments) → its cost

    def over(self, node: Node, times: int, env: dict[str, int]) -> bool:
        """Whether `times` more expansions of `node` would take the spec past MAX_WORK
        (with `times` 0: whether it is past it already)."""
        cost = self.work + times * self.cost(node, env, 0) if times else self.work
        return cost > MAX_WORK

    def cost(self, node: Node, env: dict[str, int], depth: int) -> int:
        """Statements that building `node` expands to, counted without building (capped).

        Repeat counts and block arguments that cannot be known before building
        (they read C, H or W) count as 1, and so does what is nested past
        MAX_NESTING (an error anyway); the running count catches those. `depth`
        is how deep in the syntax tree `node` is, calls included.
        """
        cap = MAX_WORK + 1
        if depth > MAX_NESTING:
            return 1   # too deep: the builder reports it
        depth += 1
        if isinstance(node, (Labeled, Assign)):
            return min(cap, 1 + self.cost(node.item, env, depth))
        if isinstance(node, Group):
            return min(cap, 1 + sum(self.cost(c, env, depth) for c in node.body))
        if isinstance(node, Repeat):
            count = quiet_value(node.count, env)
            return min(cap, 1 + max(1 if count is None else count, 0) *
                       self.cost(node.item, env, depth))
        if isinstance(node, Residual):
            return min(cap, 2 + self.cost(node.body, env, depth) +
                       (self.cost(node.shortcut, env, depth) if node.shortcut is not None else 0))
        if isinstance(node, Merge):
            return min(cap, 2 + sum(self.cost(b, env, depth) for b in node.branches))
        if isinstance(node, Call):
            return self._call_cost(node, env, depth, cap)
        return 1

    def _call_cost(self, node: Call, env: dict[str, int], depth: int, cap: int) -> int:
        block = self.blocks.get(node.name.text)
        if block is None:
            return 1
        names = [p.text for p, _ in block.params]
        args: dict[str, int] = {}
        for i, (key, value) in enumerate(node.args):
            target = key.text if key is not None else names[i] if i < len(names) else None
            v = quiet_value(value, env)
            if target is not None and v is not None:
                args[target] = v
        for param, default in block.params:
            if param.text not in args and default is not None:
                v = quiet_value(default, {})
                if v is not None:
                    args[param.text] = v
        key = (block.name.text, tuple(sorted(args.items())))
        if key not in self._costs:
            self._costs[key] = min(cap, 1 + self.cost(block.body, args, depth))
        return self._costs[key]
