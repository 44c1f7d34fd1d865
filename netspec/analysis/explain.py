"""`netspec explain`: each layer's arithmetic with its numbers filled in.

Every line comes from the layer itself (`Layer.explain`: output size, `same`
padding, parameters, MACs, FLOPs) and from the receptive field's recurrence
(netspec.analysis.rf); the notation is the Analyses page of the docs (docs/analyses.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cost import flops_by_kind, total_flops
from .rf import receptive_fields, rf_lines

if TYPE_CHECKING:
    from ..network import Network

CONVENTION = ("MACs count multiply-adds of conv and fc layers; FLOPs count every operation: "
              "2 per multiply-add, 1 per output for a bias, 2 per value for batch norm, "
              "1 for relu/tanh/sigmoid, 2 for relu6, 3 for softmax, 1 per value for a residual "
              "add, FH·FW − 1 per output for max pooling and FH·FW for average pooling (adaptive: "
              "its window's cells), "
              "2·N + 3 per value for LRN; input, dropout, flatten and concat count 0. "
              "Linear and deconv layers count as conv does, layer norm 7 per value, layer "
              "scale 1 (2 with a bias), mul by a constant 1, eca 2·C·K, rsoftmax 3 (a sigmoid 1), "
              "chunksum R − 1 per output value, bilinear upsampling 7 per output value; split, slice, shuffle, s2d "
              "and nearest upsampling move data and count 0.")


def explain(net: Network, names: list[str] | None = None) -> str:
    """The derivation of every layer (or of those named, or under a named prefix)."""
    fields = receptive_fields(net)
    chosen = [lay for lay in net.layers
              if not names or any(lay.name == n or lay.name.startswith(n + ".") for n in names)]
    if names and not chosen:
        raise KeyError(names[0])
    width = max(len(lay.name) for lay in chosen)
    out = [f"{net.name}: input {'×'.join(map(str, net.input_shape))}"]
    for layer in chosen:
        lines = [*layer.explain(), *rf_lines(layer, fields)]
        head = f"{layer.name:<{width}}  "
        out.append(f"{head}{layer.text}   (line {layer.line})")
        out.extend(" " * len(head) + line for line in lines)
    out.append("")
    out.append(CONVENTION)
    kinds = flops_by_kind(net)
    total = total_flops(net) or 1
    rows = [("kind", "layers", "MACs", "FLOPs", "share")]
    rows += [(k, str(n), f"{m:,}", f"{f:,}", f"{100 * f / total:.1f} %")
             for k, (n, m, f) in kinds.items()]
    rows.append(("total", str(len(net.layers)), f"{net.total_macs:,}", f"{total_flops(net):,}",
                 "100.0 %"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)
