"""The IR: one class per layer kind, each owning its rules, grouped by family.

A layer knows, in one place (as a Keras layer does): the options it was written
with and where (for carets), its static checks, how its output shape and parameter
count follow from its input shape (`infer`), and the shapes of its weights. The
checker and the backends ask the layer; they never re-derive its arithmetic.

Shapes are tuples: (H, W, C) for a volume, (N,) for a vector.

    base         Layer, Input, Pos, shape_str
    window       what conv and pool share: kernel, stride, padding, dilation
    conv, pool   convolution; max, average, global and adaptive average pooling
    dense        fc, flatten, dropout
    norm         batch norm, local response norm
    activations  relu, relu6, tanh, sigmoid, softmax, silu, gelu, hswish, hsigmoid, leaky
    merges       add (residual), concat, mul (gate): one family
    channels     layer norm, layer scale, linear per pixel, split chunk, channel shuffle
    resample     transposed convolution, upsampling
"""

from .activations import Activation
from .base import Input, Layer, Pos, Shape, shape_str
from .channels import Chunk, LayerNorm, LayerScale, Linear, Shuffle
from .conv import Conv
from .dense import FC, LARGE_FC_INPUTS, Dropout, Flatten
from .merges import Add, Concat, Merge, Multiply
from .norm import LRN, BatchNorm
from .pool import AdaptivePool, Pool
from .resample import Deconv, Upsample, transposed_output_size

__all__ = ["LARGE_FC_INPUTS", "LRN", "Activation", "AdaptivePool", "Add", "BatchNorm", "Concat", "Conv",
           "Dropout", "FC", "Flatten", "Input", "Layer", "Merge", "Multiply", "Pool", "Pos", "Shape",
           "shape_str", "Chunk", "Deconv", "LayerNorm", "LayerScale", "Linear", "Shuffle",
           "Upsample", "transposed_output_size"]
