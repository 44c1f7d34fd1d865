"""Torch twins of the kinds timm's CNN families need (issue 21, part b), for
tests/torch_reference.py: each written from the formula or with timm's own module, never
from netspec's code. A twin takes (layer, weights by key, input tensor)."""

from __future__ import annotations

import torch


def _slice(layer, w, t):
    """`x[:, start:stop]` from the statement as written (Python's own negative ends)."""
    return t[:, layer.start:layer.stop]


TIMM_B_TWINS = {"slice": _slice}
