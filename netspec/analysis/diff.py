"""`netspec diff A B`: what changed, per layer or per group, between two networks."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..layers import shape_str

if TYPE_CHECKING:
    from ..network import Network


def _rows(net: Network, depth: int | None) -> dict[str, tuple[str, int, int, int]]:
    """By name (or prefix): (output shape, params, MACs, activation values)."""
    from ..report import groups
    return {key: (shape_str(layers[-1].output_shape), sum(lay.params for lay in layers),
                  sum(lay.macs for lay in layers), sum(prod(lay.output_shape) for lay in layers))
            for key, layers in groups(net, depth)}


def _delta(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return f"{a if a is not None else b:,}"
    if a == b:
        return f"{a:,}"
    return f"{a:,} → {b:,} ({b - a:+,})"


def diff(a: Network, b: Network, depth: int | None = None, dtype_bytes: int = 4) -> str:
    """A table of the rows that differ in shape, parameters, MACs or activation memory."""
    from .memory import human_bytes
    ra, rb = _rows(a, depth), _rows(b, depth)
    keys = list(ra) + [k for k in rb if k not in ra]
    rows = [("layer", "", "output", "params", "MACs", "activation memory")]
    same = 0
    for key in keys:
        x, y = ra.get(key), rb.get(key)
        if x == y:
            same += 1
            continue
        mark = "-" if y is None else "+" if x is None else "~"
        shape = (x or y)[0] if x is None or y is None or x[0] == y[0] else f"{x[0]} → {y[0]}"
        mem = [human_bytes(r[3] * dtype_bytes) if r else None for r in (x, y)]
        rows.append((key, mark, shape, _delta(x and x[1], y and y[1]),
                     _delta(x and x[2], y and y[2]),
                     mem[0] if mem[0] == mem[1] or not mem[1] else
                     mem[1] if not mem[0] else f"{mem[0]} → {mem[1]}"))
    total = ("total", "", f"{shape_str(a.output_shape)} → {shape_str(b.output_shape)}"
             if a.output_shape != b.output_shape else shape_str(a.output_shape),
             _delta(a.total_params, b.total_params), _delta(a.total_macs, b.total_macs),
             " → ".join(dict.fromkeys(human_bytes(n.total_activations * dtype_bytes)
                                      for n in (a, b))))
    rows.append(total)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{a.name} ({a.filename}) → {b.name} ({b.filename}): "
             f"- only in the first, + only in the second, ~ changed"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"{same} {'row' if same == 1 else 'rows'} the same")
    return "\n".join(lines)

