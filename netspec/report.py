"""What `netspec check` prints: the per-layer table and the JSON object."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

from .layers import shape_str

if TYPE_CHECKING:
    from .network import Network

_HEADERS = ("layer", "as written", "output", "activations", "params", "MACs")


def _count(n: int) -> str:
    return f"{n:,}" if n else "–"


def table(net: Network) -> str:
    """One row per layer, like the course's LeNet-5 table, then the totals."""
    rows = [(layer.name, layer.text, shape_str(layer.output_shape),
             f"{prod(layer.output_shape):,}", _count(layer.params), _count(layer.macs))
            for layer in net.layers]
    total = ("total", "", shape_str(net.output_shape), f"{net.total_activations:,}",
             f"{net.total_params:,}", f"{net.total_macs:,}")
    widths = [max(len(r[i]) for r in (_HEADERS, *rows, total)) for i in range(len(_HEADERS))]
    right = {3, 4, 5}

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("─" * w for w in widths)
    size_mb = net.total_params * 4 / 2**20
    return "\n".join([f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}",
                      fmt(_HEADERS), rule, *map(fmt, rows), rule, fmt(total),
                      f"{net.total_params:,} parameters ({size_mb:,.2f} MiB as float32), "
                      f"{net.total_activations:,} activation values and "
                      f"{net.total_macs:,} multiply-adds per sample"])


def as_dict(net: Network) -> dict[str, Any]:
    """The `--json` object: every layer in order, input first."""
    return {
        "network": net.name,
        "file": net.filename,
        "input": list(net.input_shape),
        "output": list(net.output_shape),
        "layers": [{"name": layer.name, "op": layer.op, "text": layer.text, "line": layer.line,
                    "output": list(layer.output_shape), "params": layer.params,
                    "macs": layer.macs, **({"attrs": a} if (a := layer.attrs()) else {})}
                   for layer in net.layers],
        "total_params": net.total_params,
        "total_activations": net.total_activations,
        "total_macs": net.total_macs,
        "warnings": [w.as_dict() for w in net.warnings],
    }
