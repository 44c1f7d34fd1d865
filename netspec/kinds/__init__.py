"""The layer kinds: one class per kind, each owning its rules, grouped by family.

A layer knows, in one place (as a Keras layer does): how its statement is read and
the options it was written with (for carets), its static checks, how its output
shape and parameter count follow from its input shape (`infer`), the shapes of its
weights, its costs and the facts the analyses need. The checker and the backends
ask the layer; they never re-derive its arithmetic.

Shapes are tuples: (H, W, C) for a volume, (N,) for a vector.

    base         Layer, Input, shape_str
    statement    reading a statement's words (shared by every kind's `read`)
    arith        convolution arithmetic: output sizes, `same` padding
    window       what conv and pool share: kernel, stride, padding, dilation
    conv, pool   convolution; max, average, global and adaptive average pooling
    blur         blur pooling: anti-aliased downsampling by a fixed binomial filter
    dense        fc, flatten, dropout
    norm         batch norm, local response norm, layer norm
    groupnorm    group norm
    attention    ECA's convolution across the channels (eca)
    radix        split attention: softmax across a radix (rsoftmax), sum of its runs (chunksum)
    activations  relu, relu6, tanh, sigmoid, softmax, leaky, elu
    gating       the self-gated activations: silu, gelu, hswish, and hsigmoid
    merges       add (residual), concat, mul (gate): one family
    channels     linear per pixel, split chunk, channel shuffle
    resample     transposed convolution, upsampling
    slicing      a run of channels (slice), space to depth
    scaling      a learnable scale (with a bias), a constant factor
    registry     every kind, and the lists derived from them
"""

# in family order: the order of kinds in hints and lists (registry.py)
from .base import Input, Layer, Shape, shape_str  # noqa: I001
from .conv import Conv
from .pool import AdaptivePool, Pool
from .blur import Blur
from .dense import FC, LARGE_FC_INPUTS, Dropout, Flatten
from .norm import LRN, BatchNorm, LayerNorm
from .groupnorm import GroupNorm
from .attention import Eca
from .radix import ChunkSum, RadixSoftmax
from .activations import Activation
from . import gating  # noqa: F401  (the self-gated activations come next in every list)
from .merges import Add, Concat, Merge, Multiply
from .channels import Chunk, Linear, Shuffle
from .resample import Deconv, Upsample, transposed_output_size
from .slicing import Slice
from .scaling import ConstMul, LayerScale

__all__ = ["LARGE_FC_INPUTS", "LRN", "Activation", "AdaptivePool", "Add", "BatchNorm", "Blur",
           "Chunk", "ChunkSum", "Concat", "ConstMul", "Conv", "Deconv", "Dropout", "Eca", "FC",
           "Flatten", "GroupNorm", "Input", "Layer", "LayerNorm", "LayerScale", "Linear", "Merge",
           "Multiply", "Pool", "RadixSoftmax", "Shape", "Shuffle", "Slice", "Upsample",
           "shape_str", "transposed_output_size"]
