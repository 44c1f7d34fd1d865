"""Torch twins of the kinds timm's CNN families need (issue 21, part b), for
tests/torch_reference.py: each written from the formula or with timm's own module, never
from netspec's code. A twin takes (layer, weights by key, input tensor)."""

from __future__ import annotations

import torch


def _slice(layer, w, t):
    """`x[:, start:stop]` from the statement as written (Python's own negative ends)."""
    return t[:, layer.start:layer.stop]


def _scale(layer, w, t):
    """x·scale (+ bias): a stored (C,) viewed as C×1×1 on a volume, as timm's ConvNeXt."""
    scale, bias = (w[f"{layer.name}.scale"], w[f"{layer.name}.bias"]) if layer.bias \
        else (w[layer.name], None)
    if layer.stored == "(C,)" and t.dim() == 4:
        scale, bias = scale.view(-1, 1, 1), (bias.view(-1, 1, 1) if bias is not None else None)
    return t * scale + bias if bias is not None else t * scale


def _s2d(layer, w, t):
    """timm's SpaceToDepth (which takes only block 4); its view/permute/view otherwise."""
    from timm.layers import SpaceToDepth
    if layer.block == 4:
        return SpaceToDepth()(t)
    n, c, h, wd = t.shape
    b = layer.block
    t = t.view(n, c, h // b, b, wd // b, b).permute(0, 3, 5, 1, 2, 4).contiguous()
    return t.view(n, c * b * b, h // b, wd // b)


def _eca(layer, w, t):
    """torch's conv1d across the channels of (N, C, 1, 1) or (N, C), as timm's EcaModule."""
    k = w[f"{layer.name}.weight"].shape[-1]
    y = torch.nn.functional.conv1d(t.reshape(t.shape[0], 1, -1), w[f"{layer.name}.weight"],
                                   padding=(k - 1) // 2)
    return y.reshape(t.shape)


def _rsoftmax(layer, w, t):
    """timm's RadixSoftmax (which flattens to (B, C) for R > 1), back to t's shape."""
    from timm.layers.split_attn import RadixSoftmax
    return RadixSoftmax(layer.radix, layer.groups)(t).reshape(t.shape)


def _chunksum(layer, w, t):
    return t.reshape(t.shape[0], layer.radix, -1, *t.shape[2:]).sum(1)


TIMM_B_TWINS = {"slice": _slice, "scale": _scale, "s2d": _s2d, "eca": _eca,
                "rsoftmax": _rsoftmax, "chunksum": _chunksum,
                "const_mul": lambda layer, w, t: t * layer.factor}
