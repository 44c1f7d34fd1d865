"""netspec: a compiler for convolutional network specs.

Parse a spec, check its convolution arithmetic, report shapes and parameter
counts, and run it in NumPy or export it to ONNX::

    >>> import netspec
    >>> net = netspec.parse("input 32x32x3; conv 5x5 x6; pool 2; fc 10")
    >>> net.output_shape, net.total_params
    ((10,), 12226)

Importing netspec loads neither NumPy nor ONNX; the backends load them on use.
"""

from .kinds.arith import conv_output_size, pool_output_size, same_padding
from .source.diagnostics import (
                     Diagnostic,
                     InputError,
                     NetspecError,
                     ShapeError,
                     SpecError,
                     SpecSyntaxError,
                     WeightsError,
)
from .network import Network, load, parse

__version__ = "0.1.0"

__all__ = [
    "Diagnostic", "InputError", "NetspecError", "Network", "ShapeError", "SpecError",
    "SpecSyntaxError", "WeightsError", "conv_output_size", "load", "parse",
    "pool_output_size", "same_padding",
]
