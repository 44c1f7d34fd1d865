"""A test-only PyTorch twin of a netspec network, built from the spec's options.

It runs torch.nn.functional's own conv2d, max_pool2d, avg_pool2d, linear,
batch_norm and local_response_norm, so NumPy and ONNX results are compared
against PyTorch's numerics. `same` padding is derived here independently (the
TensorFlow formula), not taken from netspec.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch_twins_b import TIMM_B_TWINS


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


def _pool(layer, t):
    if layer.global_pool:
        return t.amax((2, 3), keepdim=True) if layer.mode == "max" else t.mean((2, 3), keepdim=True)
    l, r, tp, b = _pads(layer, t.shape[2:])
    if (l, tp) == (r, b) and l <= min(layer.kernel) // 2:   # torch's own padding
        if layer.mode == "max":
            return F.max_pool2d(t, layer.kernel, layer.strides, padding=(tp, l),
                                ceil_mode=layer.ceil_mode)
        return F.avg_pool2d(t, layer.kernel, layer.strides, padding=(tp, l),
                            ceil_mode=layer.ceil_mode, count_include_pad=layer.count_pad)
    if layer.mode == "max":
        return F.max_pool2d(F.pad(t, (l, r, tp, b), value=-math.inf), layer.kernel, layer.strides)
    if layer.count_pad:   # the padding cells are averaged in as zeros
        return F.avg_pool2d(F.pad(t, (l, r, tp, b)), layer.kernel, layer.strides)
    # asymmetric average: sum over zero padding, divided by the real cells
    ones = F.pad(torch.ones_like(t[:1, :1]), (l, r, tp, b))
    area = math.prod(layer.kernel)
    total = F.avg_pool2d(F.pad(t, (l, r, tp, b)), layer.kernel, layer.strides) * area
    return total / (F.avg_pool2d(ones, layer.kernel, layer.strides) * area)


def _blur(layer, w, t):
    """timm's BlurPool2d (its filter a buffer, no weights)."""
    from timm.layers import BlurPool2d
    pool = BlurPool2d(t.shape[1], layer.kernel[0], layer.strides[0]).to(t.dtype)
    return pool(t)


def _standardised(layer, weight, gain):
    """The conv's weight standardised as timm's StdConv2d and ScaledStdConv2d compute it: a
    batch norm in training mode over each filter's weights, scaled by gain·γ/√fan_in."""
    ws, k = layer.ws, weight.shape[0]
    scale = ws.gamma * weight[0].numel() ** -0.5
    return F.batch_norm(weight.reshape(1, k, -1), None, None,
                        weight=(gain * scale).view(-1) if ws.gain else None, training=True,
                        momentum=0.0, eps=ws.eps).reshape_as(weight)


def _layer(layer, w, ins):
    t = ins[0] if ins else None
    op, name = layer.op, layer.name
    if op == "conv":
        t = F.pad(t, _pads(layer, t.shape[2:]))
        weight = w[f"{name}.weight"]
        if layer.ws is not None:
            weight = _standardised(layer, weight, w.get(f"{name}.gain"))
        return F.conv2d(t, weight, w.get(f"{name}.bias"), stride=layer.strides,
                        dilation=layer.dilation, groups=layer.groups)
    if op == "pool":
        return _pool(layer, t)
    if op == "adaptive_pool":
        return F.adaptive_avg_pool2d(t, layer.size)
    if op == "fc":
        return F.linear(t.flatten(1), w[f"{name}.weight"], w[f"{name}.bias"])
    if op == "bn":
        return F.batch_norm(t, w[f"{name}.running_mean"], w[f"{name}.running_var"],
                            w[f"{name}.weight"], w[f"{name}.bias"], training=False, eps=layer.eps)
    if op == "lrn":
        return F.local_response_norm(t, layer.size, layer.alpha, layer.beta, layer.k)
    if op in _CHANNEL_OPS:
        return _CHANNEL_OPS[op](layer, w, t)
    simple = {"flatten": lambda: t.flatten(1), "relu": lambda: F.relu(t),
              "relu6": lambda: F.relu6(t), "tanh": lambda: torch.tanh(t),
              "sigmoid": lambda: torch.sigmoid(t), "softmax": lambda: F.softmax(t, dim=1),
              "dropout": lambda: F.dropout(t, layer.rate, training=False),
              "add": lambda: sum(ins[1:], ins[0]), "concat": lambda: torch.cat(ins, dim=1),
              "mul": lambda: ins[0] * ins[1], "silu": lambda: F.silu(t),
              "gelu": lambda: F.gelu(t), "hswish": lambda: F.hardswish(t),
              "hsigmoid": lambda: F.hardsigmoid(t), "mish": lambda: F.mish(t),
              "leaky": lambda: F.leaky_relu(t, layer.slope),
              "elu": lambda: F.elu(t, layer.alpha)}
    return simple[op]()


def _channels_last(f, t):
    """f applied to the channels of each pixel, as torch's channels-last modules do."""
    return f(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) if t.dim() == 4 else f(t)


def _chunk(layer, w, t):
    if layer.runs is not None:   # `split N,N,… { … }`: the runs as written
        return torch.split(t, list(layer.runs), 1)[layer.index]
    return t.chunk(layer.count, dim=1)[layer.index]


def _shuffle(layer, w, t):
    """torchvision's shufflenetv2.channel_shuffle."""
    n, c, h, wd = t.shape
    g = layer.groups
    return t.view(n, g, c // g, h, wd).transpose(1, 2).contiguous().view(n, c, h, wd)


def _deconv(layer, w, t):
    return F.conv_transpose2d(t, w[f"{layer.name}.weight"], w.get(f"{layer.name}.bias"),
                              stride=layer.stride, padding=layer.padding,
                              output_padding=layer.output_padding, groups=layer.groups,
                              dilation=layer.dilation)


_CHANNEL_OPS = {
    "layernorm": lambda layer, w, t: _channels_last(lambda v: F.layer_norm(
        v, v.shape[-1:], w[f"{layer.name}.weight"], w[f"{layer.name}.bias"], layer.epsilon), t),
    "scale": lambda layer, w, t: w[layer.name] * t,
    "linear": lambda layer, w, t: _channels_last(lambda v: F.linear(
        v, w[f"{layer.name}.weight"], w.get(f"{layer.name}.bias")), t),
    "chunk": _chunk, "shuffle": _shuffle, "deconv": _deconv, "blur": _blur,
    "groupnorm": lambda layer, w, t: F.group_norm(t, layer.groups, w[f"{layer.name}.weight"],
                                                  w[f"{layer.name}.bias"], layer.eps),
}
_CHANNEL_OPS.update(TIMM_B_TWINS)


def _upsample(layer, t, values):
    """F.interpolate by the factor as written, or to the size written / referred to."""
    kwargs = {"mode": layer.mode} | ({"align_corners": False} if layer.mode == "bilinear" else {})
    if layer.factor is not None:
        return F.interpolate(t, scale_factor=tuple(float(f) for f in layer.factor), **kwargs)
    size = layer.size if layer.size is not None else values[layer.reference.name].shape[-2:]
    return F.interpolate(t, size=tuple(size), **kwargs)


def torch_forward(net, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Run `net` on NCHW `x` with torch, layer by layer, following its graph."""
    w = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
    values = {net.layers[0].name: torch.from_numpy(np.asarray(x, np.float32))}
    with torch.no_grad():
        for layer in net.layers[1:]:
            if layer.aux:
                continue   # aux heads are not part of the inference output
            ins = [values[i.name] for i in layer.inputs]
            values[layer.name] = (_upsample(layer, ins[0], values) if layer.op == "upsample"
                                  else _layer(layer, w, ins))
    return values[net.layers[-1].name].numpy()
