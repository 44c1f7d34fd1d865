"""MACs and FLOPs, and the convention that turns one into the other.

A MAC is one multiply-add: conv and fc layers count H_out·W_out·K·FH·FW·C_in/g and
inputs·units (`Layer.macs`). FLOPs count every floating-point operation of
inference (`Layer.flops`): two per multiply-add, one add per output for a bias,
two per value for batch norm (folded into a scale and a shift), one per value for
relu, tanh and sigmoid, two for relu6, three for softmax (exp, sum, divide), four
for elu (compare, exp, subtract, multiply), one
per value for a residual add, FH·FW − 1 comparisons per output for max pooling and
FH·FW − 1 adds and a multiply for average pooling (adaptive pooling: its window's
cells), 2·N + 3 per value for an N-wide
LRN; input, dropout, flatten and concatenation move data and count none. Per-pixel
linear and transposed conv layers count as conv does (two per multiply-add, one per
output for a bias), layer norm 7 per value, layer scale 1 (2 with a bias), a constant
multiply 1, ECA's convolution 2 per multiply-add (C·K), a radix softmax 3 per value (1
for a radix of 1, a sigmoid), the sum of R runs R − 1 per output, bilinear upsampling 7 per
output value (four neighbours weighed); split chunks, channel slices, channel shuffle,
space to depth and nearest upsampling move data and count none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..network import Network


def total_flops(net: Network) -> int:
    """FLOPs of one sample's forward pass (inference: `aux` heads are not computed)."""
    return sum(layer.flops() for layer in net.layers if not layer.aux)


def flops_by_kind(net: Network) -> dict[str, tuple[int, int, int]]:
    """Per layer kind: (layers, MACs, FLOPs), largest FLOPs first."""
    kinds: dict[str, list[int]] = {}
    for layer in net.layers:
        if layer.aux:
            continue
        row = kinds.setdefault(layer.kind, [0, 0, 0])
        row[0] += 1
        row[1] += layer.macs
        row[2] += layer.flops()
    return {k: (v[0], v[1], v[2]) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1][2])}
