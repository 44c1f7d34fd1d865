"""What `netspec check` prints: the per-layer table and the JSON object."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

from .layers import Layer, shape_str

if TYPE_CHECKING:
    from .network import Network

_HEADERS = ("layer", "as written", "output", "activations", "params", "MACs")


def _count(n: int) -> str:
    return f"{n:,}" if n else "–"


def _groups(net: Network, depth: int | None) -> list[tuple[str, list[Layer]]]:
    """Consecutive layers whose names share their first `depth` parts, with that prefix."""
    groups: list[tuple[str, list[Layer]]] = []
    for layer in net.layers:
        key = layer.name if depth is None else ".".join(layer.name.split(".")[:depth])
        if groups and groups[-1][0] == key and depth is not None:
            groups[-1][1].append(layer)
        else:
            groups.append((key, [layer]))
    return groups


def table(net: Network, depth: int | None = None) -> str:
    """One row per layer, like the course's LeNet-5 table, then the totals.

    With `depth`, layers are summed into one row per name prefix of that many
    parts (`--depth 1` shows `layer1`, `layer2`...; `--depth 2` `layer1.0`...), as
    torchinfo's depth does; a block instance is shown as its call.
    """
    rows = []
    for key, layers in _groups(net, depth):
        last = layers[-1]
        text = (layers[0].text if len(layers) == 1 and layers[0].name == key
                else net.instances.get(key, f"{len(layers)} layers"))
        if all(lay.aux for lay in layers):
            text += "  (aux)"   # counted in the parameters, not computed at inference
        rows.append((key, text, shape_str(last.output_shape), f"{prod(last.output_shape):,}",
                     _count(sum(lay.params for lay in layers)),
                     _count(sum(lay.macs for lay in layers))))
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
                    "inputs": [i.name for i in layer.inputs],
                    "output": list(layer.output_shape), "params": layer.params,
                    "macs": layer.macs, **({"attrs": a} if (a := layer.attrs()) else {}),
                    **({"aux": True} if layer.aux else {})}
                   for layer in net.layers],
        "total_params": net.total_params,
        "total_activations": net.total_activations,
        "total_macs": net.total_macs,
        "warnings": [w.as_dict() for w in net.warnings],
    }
