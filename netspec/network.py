"""The checked network and the public API: `parse` and `load`.

`parse` runs two passes, each reporting every error it can find: syntax
(parser.py), then the build (builder.py), which expands blocks, names layers,
checks the structure and each layer's arithmetic. A layer whose input shape is
unknown because of an earlier error is skipped rather than reported again.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Diagnostic, Reporter, SpecError, raise_all
from .layers import Layer, Shape

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .numpy_backend import NumpyModel


class Network:
    """A checked network: layers in order (input first), each with its output shape.

    Build one with `netspec.parse` or `netspec.load`; every shape and parameter
    count is already known and valid.
    """

    def __init__(self, name: str, layers: list[Layer], warnings: list[Diagnostic],
                 filename: str | None = None, source: str = "",
                 instances: dict[str, str] | None = None) -> None:
        self.name = name
        self.layers = layers
        self.warnings = warnings
        self.filename = filename
        self.source = source
        self.instances = instances or {}   # block instance name → its call, `basic(c=64)`

    def __repr__(self) -> str:
        return f"<Network {self.name!r}: {len(self.layers)} layers, {self.total_params:,} params>"

    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def input_shape(self) -> Shape:
        """The input as written, (H, W, C) or (N,)."""
        return self.layers[0].output_shape

    @property
    def output_shape(self) -> Shape:
        """The last layer's output, (H, W, C) or (N,)."""
        return self.layers[-1].output_shape

    @property
    def total_params(self) -> int:
        """Trainable parameters of all layers."""
        return sum(layer.params for layer in self.layers)

    @property
    def total_activations(self) -> int:
        """Values produced by all layers for one sample, the input included."""
        return sum(prod(layer.output_shape) for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of the conv and fc layers for one sample."""
        return sum(layer.macs for layer in self.layers)

    def weight_shapes(self) -> dict[str, Shape]:
        """Every array of the network, keyed like a PyTorch `state_dict`."""
        return {layer.weight_key(key): shape for layer in self.layers
                for key, shape in layer.weight_shapes().items()}

    def summary(self, depth: int | None = None) -> str:
        """The per-layer table that `netspec check` prints (see report.table)."""
        from .report import table
        return table(self, depth)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object that `netspec check --json` prints."""
        from .report import as_dict
        return as_dict(self)

    def init_weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic initial weights: He-normal conv/fc weights, zero biases.

        Batch norm starts as the identity (scale 1, shift 0, mean 0, variance 1).
        """
        from .weights import init_weights
        return init_weights(self, seed)

    def check_weights(self, weights: dict[str, Any]) -> dict[str, np.ndarray]:
        """Validate names and shapes against this network; return float32 arrays."""
        from .weights import check_weights
        return check_weights(self, weights)

    def numpy_model(self, weights: dict[str, Any] | None = None, *, seed: int = 0,
                    threads: int | None = None) -> NumpyModel:
        """A callable NumPy model: `model(x)` maps (N, C, H, W) float32 to the output.

        `threads` splits a batch across that many threads (default: every usable CPU).
        """
        from .numpy_backend import NumpyModel
        return NumpyModel(self, self.check_weights(weights) if weights is not None
                          else self.init_weights(seed), threads)

    def to_onnx(self, weights: dict[str, Any] | None = None, *, seed: int = 0,
                opset: int | None = None) -> onnx.ModelProto:
        """The network with its weights as an ONNX model (see netspec.onnx_export)."""
        from .onnx_export import to_onnx
        return to_onnx(self, self.check_weights(weights) if weights is not None
                       else self.init_weights(seed), opset=opset)


def parse(text: str, filename: str | None = None) -> Network:
    """Parse and check a spec; return the Network or raise every error found.

    Raises a `NetspecError` subclass (the first error, with all of them in its
    `errors`) carrying the line and column of the mistake.
    """
    from .builder import Builder
    from .parser import parse_tree
    rep = Reporter(text, filename)
    nodes = parse_tree(text, rep)
    builder = Builder(text, rep)
    layers = builder.build(nodes) if not rep.errors else []
    raise_all(rep.errors)
    name = Path(filename).stem if filename and filename != "<stdin>" else "network"
    return Network(name, layers, rep.warnings, filename, text, builder.instances)


def load(path: str | Path) -> Network:
    """Read and check the spec at `path` (see `parse`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")   # a BOM is not part of the spec
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse(text, str(path))
