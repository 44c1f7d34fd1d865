"""The NumPy executable model: a checked Network and its weights, run on batches.

The model takes and returns NCHW float32 like PyTorch, but runs NHWC inside:
with channels last, the im2col matrix of a convolution is a plain reshape of a
strided window view, one BLAS matrix multiply yields the output already in NHWC,
and no transpose is needed between layers. Each layer kind lowers to one
function below that closes over its prepared weights; the arithmetic (output
sizes, padding) comes from the layer, never recomputed here.

    windows  padding and strided window views, shared by conv and pool
    conv     convolution (im2col + BLAS; depthwise tap by tap)
    pool     max, average and global pooling
    ops      fc, batch norm, activations, flatten, LRN, concat
    channels layer norm, layer scale, per-pixel linear, split chunks, channel shuffle
    resample transposed convolution, nearest and bilinear upsampling
    model    lowering, the plan of steps, threads, inputs
    heap     keeping freed memory for the next pass (glibc's malloc thresholds)
"""

from .conv import im2col_blocks, im2col_bytes
from .model import NumpyModel, load_input, prepare_input, sample_shape, usable_cpus

__all__ = ["NumpyModel", "im2col_blocks", "im2col_bytes", "load_input", "prepare_input",
           "sample_shape", "usable_cpus"]
