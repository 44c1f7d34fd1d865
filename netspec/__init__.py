"""netspec: a compiler for convolutional network specs.

Parse a spec, check its convolution arithmetic, report shapes and parameter
counts, and run it in NumPy or export it to ONNX::

    >>> import netspec
    >>> net = netspec.parse("input 32x32x3; conv 5x5 x6; pool 2; fc 10")
    >>> net.output_shape, net.total_params
    ((10,), 12226)

Importing netspec loads neither NumPy nor ONNX; the backends load them on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import numpy as np

__version__ = "0.1.0"

__all__ = [
    "Diagnostic", "InputError", "NetspecError", "Network", "ShapeError", "SpecError",
    "SpecSyntaxError", "WeightsError", "conv_output_size", "gradients", "load", "parse",
    "pool_output_size", "same_padding",
]


def gradients(net: Network, weights: dict[str, Any], x: np.ndarray, dy: np.ndarray,
              training: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The vector–Jacobian product of the network's output with `dy`: (dx, {name: dW}),
    equal to torch autograd's (see netspec.training.model.gradients, which it calls:
    NumPy is imported only then).

    x is N×C×H×W (or N×F) as `netspec run` takes it, dy the output's shape (N×K×H×W or
    N×K); dx comes back in x's layout, and every trainable weight's gradient by its
    state-dict key. `training=False`: batch norm on its running statistics, dropout
    the identity; `training=True`: batch statistics (no running statistics updated),
    dropout masks from NumPy's generator seeded 0.
    """
    from .training.model import gradients as compute
    return compute(net, weights, x, dy, training)
