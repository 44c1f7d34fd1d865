"""A test-only PyTorch twin of a netspec network, built from the spec's options.

It runs torch.nn.functional's own conv2d, max_pool2d, avg_pool2d, linear and
batch_norm, so NumPy and ONNX results are compared against PyTorch's numerics.
`same` padding is derived here independently (the TensorFlow formula), not
taken from netspec.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def tf_same_pads(n: int, f: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME: output ceil(n/s); the odd padding pixel goes after."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (f - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _pads(layer, hw):
    """(left, right, top, bottom) for F.pad, from the layer as written."""
    if layer.padding == "same":
        (t, b), (l, r) = (tf_same_pads(n, f, s, layer.dilation)
                          for n, f, s in zip(hw, layer.kernel, layer.strides))
        return l, r, t, b
    p = 0 if layer.padding == "valid" else layer.padding
    return p, p, p, p


def torch_forward(net, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Run `net` on NCHW `x` with torch, layer by layer."""
    t = torch.from_numpy(np.asarray(x, np.float32))
    w = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
    with torch.no_grad():
        for layer in net.layers[1:]:
            op = layer.op
            if op == "conv":
                t = F.pad(t, _pads(layer, t.shape[2:]))
                t = F.conv2d(t, w[f"{layer.name}.weight"], w[f"{layer.name}.bias"],
                             stride=layer.strides, dilation=layer.dilation, groups=layer.groups)
            elif op == "pool":
                l, r, tp, b = _pads(layer, t.shape[2:])
                if layer.mode == "max":
                    t = F.pad(t, (l, r, tp, b), value=-math.inf)
                    t = F.max_pool2d(t, layer.kernel, layer.strides, ceil_mode=layer.ceil_mode)
                elif (l, tp) == (r, b) and l <= min(layer.kernel) // 2:
                    t = F.avg_pool2d(t, layer.kernel, layer.strides, padding=(tp, l),
                                     ceil_mode=layer.ceil_mode, count_include_pad=False)
                else:  # asymmetric: sum over zero padding, divided by the real cells
                    ones = F.pad(torch.ones_like(t[:1, :1]), (l, r, tp, b))
                    t = F.pad(t, (l, r, tp, b))
                    area = math.prod(layer.kernel)
                    total = F.avg_pool2d(t, layer.kernel, layer.strides) * area
                    cells = F.avg_pool2d(ones, layer.kernel, layer.strides) * area
                    t = total / cells
            elif op == "fc":
                t = F.linear(t.flatten(1), w[f"{layer.name}.weight"], w[f"{layer.name}.bias"])
            elif op == "bn":
                n = layer.name
                t = F.batch_norm(t, w[f"{n}.running_mean"], w[f"{n}.running_var"],
                                 w[f"{n}.weight"], w[f"{n}.bias"], training=False, eps=1e-5)
            elif op == "flatten":
                t = t.flatten(1)
            elif op == "relu":
                t = F.relu(t)
            elif op == "tanh":
                t = torch.tanh(t)
            elif op == "sigmoid":
                t = torch.sigmoid(t)
            elif op == "softmax":
                t = F.softmax(t, dim=1)
            elif op == "dropout":
                t = F.dropout(t, layer.rate, training=False)
            else:
                raise NotImplementedError(op)
    return t.numpy()
