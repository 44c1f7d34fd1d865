"""ONNX lowerings of the channel and resampling layers (layers/channels.py, resample.py).

Standard operators only: LayerNormalization (opset 17 on; its ReduceMean/Sqrt
form before), Mul, a 1×1 Conv for `linear` on a volume (Gemm on a vector),
Split, Reshape/Transpose/Reshape for the shuffle, ConvTranspose, and Resize
(`half_pixel` for bilinear; `asymmetric` + `floor` for nearest, torch's rule).
Each takes the graph under construction, the layer and its input value, and
returns its output value, as the lowerings in onnx_export.py do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from onnx import helper, numpy_helper

from .kinds import Chunk, Deconv, LayerNorm, LayerScale, Linear, Shuffle, Upsample

if TYPE_CHECKING:
    from .onnx_export import _Graph


def _int64s(g: _Graph, layer, name: str, values: list[int]) -> str:
    """A constant int64 tensor (shapes, sizes), as a Constant node."""
    return g.node(layer, "Constant", [], name, name=name,
                  value=numpy_helper.from_array(np.array(values, np.int64), name))


def _transpose(g: _Graph, layer, x: str, out: str, perm: list[int]) -> str:
    return g.node(layer, "Transpose", [x], out, name=out, perm=perm)


def _layernorm(g: _Graph, layer: LayerNorm, x: str) -> str:
    eps = layer.epsilon
    if g.opset < 17:
        return _layernorm_decomposed(g, layer, x, len(layer.input_shape) + 1)
    weight, bias = g.weight(layer, "weight"), g.weight(layer, "bias")
    if len(layer.input_shape) == 1:
        return g.node(layer, "LayerNormalization", [x, weight, bias], layer.name, axis=-1,
                      epsilon=eps)
    # LayerNormalization normalises the trailing axes: move the channels last and back
    nhwc = _transpose(g, layer, x, f"{layer.name}.nhwc", [0, 2, 3, 1])
    normed = g.node(layer, "LayerNormalization", [nhwc, weight, bias], f"{layer.name}.normed",
                    name=f"{layer.name}.norm", axis=-1, epsilon=eps)
    return _transpose(g, layer, normed, layer.name, [0, 3, 1, 2])


def _layernorm_decomposed(g: _Graph, layer: LayerNorm, x: str, rank: int) -> str:
    """Before opset 17: (x − mean) / √(var + ε) · weight + bias, reducing axis 1."""
    c = layer.input_shape[-1]
    shape = (c, 1, 1) if rank == 4 else (c,)
    weight, bias = g.weight(layer, "weight", shape), g.weight(layer, "bias", shape)
    n = layer.name
    mean = g.node(layer, "ReduceMean", [x], f"{n}.mean", name=f"{n}.mean", axes=[1])
    centred = g.node(layer, "Sub", [x, mean], f"{n}.centred", name=f"{n}.centred")
    square = g.node(layer, "Mul", [centred, centred], f"{n}.square", name=f"{n}.square")
    var = g.node(layer, "ReduceMean", [square], f"{n}.var", name=f"{n}.var", axes=[1])
    eps = g.constant(f"{n}.epsilon", np.array(layer.epsilon, np.float32))
    std = g.node(layer, "Sqrt", [g.node(layer, "Add", [var, eps], f"{n}.var_eps",
                                        name=f"{n}.var_eps")], f"{n}.std", name=f"{n}.std")
    normed = g.node(layer, "Div", [centred, std], f"{n}.normed", name=f"{n}.normed")
    scaled = g.node(layer, "Mul", [normed, weight], f"{n}.scaled", name=f"{n}.scaled")
    return g.node(layer, "Add", [scaled, bias], n)


def _scale(g: _Graph, layer: LayerScale, x: str) -> str:
    # the state_dict key is the layer's own name, which names its output value here
    gamma = g.constant(f"{layer.name}.scale", g.weights[layer.weight_key("")])
    return g.node(layer, "Mul", [x, gamma], layer.name)   # (C, 1, 1) broadcasts over H×W


def _linear(g: _Graph, layer: Linear, x: str) -> str:
    units, c = layer.units, layer.in_features
    bias = [g.weight(layer, "bias")] if layer.bias else []
    if len(layer.input_shape) == 1:
        return g.node(layer, "Gemm", [x, g.weight(layer, "weight"), *bias], layer.name, transB=1)
    # on a volume, the same (out, in) matrix applied to every pixel is a 1×1 convolution
    return g.node(layer, "Conv", [x, g.weight(layer, "weight", (units, c, 1, 1)), *bias],
                  layer.name, kernel_shape=[1, 1])


def _chunk(g: _Graph, layer: Chunk, x: str) -> str:
    """One output of a Split into `count` equal parts; the others are left unused."""
    size = layer.output_shape[-1]
    outputs = [layer.name if i == layer.index else f"{layer.name}.unused{i}"
               for i in range(layer.count)]
    split = _int64s(g, layer, f"{layer.name}.sizes", [size] * layer.count)
    where = f"{g.net.filename or g.net.name}:{layer.line}"
    g.nodes.append(helper.make_node("Split", [x, split], outputs, name=layer.name, axis=1,
                                    doc_string=f"{where}: {layer.text}"))
    return layer.name


def _shuffle(g: _Graph, layer: Shuffle, x: str) -> str:
    h, w, c = layer.input_shape
    grp, n = layer.groups, layer.name
    grouped = g.node(layer, "Reshape", [x, _int64s(g, layer, f"{n}.grouped_shape",
                                                   [0, grp, c // grp, h, w])],
                     f"{n}.grouped", name=f"{n}.grouped")
    swapped = _transpose(g, layer, grouped, f"{n}.swapped", [0, 2, 1, 3, 4])
    return g.node(layer, "Reshape", [swapped, _int64s(g, layer, f"{n}.shape", [0, c, h, w])], n)


def _deconv(g: _Graph, layer: Deconv, x: str) -> str:
    weights = [g.weight(layer, "weight")] + ([g.weight(layer, "bias")] if layer.bias else [])
    p, op = layer.padding, layer.output_padding
    return g.node(layer, "ConvTranspose", [x, *weights], layer.name,
                  kernel_shape=list(layer.kernel), strides=list(layer.strides),
                  pads=[p, p, p, p], dilations=[layer.dilation] * 2, group=layer.groups,
                  output_padding=[op, op])


def _upsample(g: _Graph, layer: Upsample, x: str) -> str:
    """Resize to the size netspec decided: the batch and channels from x's shape, H×W fixed."""
    n = layer.name
    batch_channels = g.node(layer, "Slice", [
        g.node(layer, "Shape", [x], f"{n}.in_shape", name=f"{n}.in_shape"),
        _int64s(g, layer, f"{n}.start", [0]), _int64s(g, layer, f"{n}.stop", [2])],
        f"{n}.batch_channels", name=f"{n}.batch_channels")
    sizes = g.node(layer, "Concat", [batch_channels, _int64s(g, layer, f"{n}.hw",
                                                             list(layer.output_shape[:2]))],
                   f"{n}.sizes", name=f"{n}.sizes", axis=0)
    if layer.mode == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return g.node(layer, "Resize", [x, "", "", sizes], n, **attrs)


LOWERINGS = {
    "layernorm": _layernorm, "scale": _scale, "linear": _linear, "chunk": _chunk,
    "shuffle": _shuffle, "deconv": _deconv, "upsample": _upsample,
}
