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


TIMM_B_TWINS = {"slice": _slice, "scale": _scale, "s2d": _s2d,
                "const_mul": lambda layer, w, t: t * layer.factor}
