"""The checked network and the public API: `parse` and `load`.

`parse` runs two passes, each reporting every error it can find: syntax
(parser.py), then the build (builder.py), which expands blocks, names layers,
checks the structure and each layer's arithmetic. A layer whose input shape is
unknown because of an earlier error is skipped rather than reported again.
"""

from __future__ import annotations

import gc
import os
from math import prod
from typing import TYPE_CHECKING, Any

from .ir import tree as ir
from .kinds.base import Layer, Shape
from .source.diagnostics import Diagnostic, Reporter, SpecError
from .source.files import decode_spec, read_limited

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .backends.numpy import NumpyModel


class Network:
    """A checked network: layers in order (input first), each with its output shape.

    Build one with `netspec.parse` or `netspec.load`; every shape and parameter
    count is already known and valid.
    """

    def __init__(self, name: str, layers: list[Layer], warnings: list[Diagnostic],
                 filename: str | None = None, source: str = "",
                 tree: ir.Seq | None = None, syntax: Any = None) -> None:
        self.name = name
        self.layers = layers
        self.warnings = warnings
        self.filename = filename
        self.source = source
        #: the network as built, a tree of sequences, block instances, residuals and merges
        #: (netspec.ir.tree); `layers` is its flattening
        self.tree = tree if tree is not None else ir.Seq(items=list(layers))
        #: the spec tree, (block definitions by name, top-level statements), from which
        #: the PyTorch code generator writes one class per block
        self.syntax = syntax
        self.sources: dict[str | None, str] = {None: source}   # and the libraries it used

    @property
    def instances(self) -> dict[str, str]:
        """Each block instance's name, with its call: `layer2.0` → `basic(c=128, s=2)`."""
        return {n.prefix: n.call for n in ir.walk(self.tree) if isinstance(n, ir.Instance)}

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
        """Values produced by all layers for one sample, the input included (not `aux` heads,
        which inference does not compute)."""
        return sum(prod(layer.output_shape) for layer in self.layers if not layer.aux)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of the conv and fc layers for one sample (not `aux` heads)."""
        return sum(layer.macs for layer in self.layers if not layer.aux)

    def weight_shapes(self) -> dict[str, Shape]:
        """Every array of the network, keyed like a PyTorch `state_dict`."""
        return {layer.weight_key(key): shape for layer in self.layers
                for key, shape in layer.weight_shapes().items()}

    def summary(self, depth: int | None = None, **options: Any) -> str:
        """The per-layer table that `netspec check` prints (see report.table).

        `options`: columns (names from report.COLUMNS), batch, dtype, optimizer.
        """
        from .tables import table
        return table(self, depth, **options)

    def to_dict(self, **options: Any) -> dict[str, Any]:
        """The JSON object that `netspec check --json` prints (options: batch, dtype, optimizer)."""
        from .tables import as_dict
        return as_dict(self, **options)

    def _repr_html_(self) -> str:
        """The table, for Jupyter and other notebooks."""
        from .tables import html_table
        return html_table(self)

    def init_weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic initial weights: He-normal conv/fc weights, zero biases.

        Batch norm starts as the identity (scale 1, shift 0, mean 0, variance 1).
        """
        from .data.weights import init_weights
        return init_weights(self, seed)

    def check_weights(self, weights: dict[str, Any]) -> dict[str, np.ndarray]:
        """Validate names and shapes against this network; return float32 arrays."""
        from .data.weights import check_weights
        return check_weights(self, weights)

    def numpy_model(self, weights: dict[str, Any] | None = None, *, seed: int = 0,
                    threads: int | None = None) -> NumpyModel:
        """A callable NumPy model: `model(x)` maps (N, C, H, W) float32 to the output.

        `threads` splits a batch across that many threads (default: every usable CPU).
        """
        from .backends.numpy import NumpyModel
        return NumpyModel(self, self.check_weights(weights) if weights is not None
                          else self.init_weights(seed), threads)

    def to_onnx(self, weights: dict[str, Any] | None = None, *, seed: int = 0,
                opset: int | None = None) -> onnx.ModelProto:
        """The network with its weights as an ONNX model (see netspec.backends.onnx)."""
        from .backends.onnx import to_onnx
        return to_onnx(self, self.check_weights(weights) if weights is not None
                       else self.init_weights(seed), opset=opset)


class Library:
    """A checked library file: `block` definitions (and `use`) only, no network.

    `netspec check` accepts one (`parse(..., library=True)`): every block parses,
    and names, parameters and the files it uses are valid. Its blocks are
    expanded, with their arguments, by the specs that use it.
    """

    def __init__(self, name: str, blocks: list[str], filename: str | None,
                 warnings: list[Diagnostic]) -> None:
        self.name = name
        self.blocks = blocks
        self.filename = filename
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"<Library {self.name!r}: {len(self.blocks)} blocks>"

    def summary(self) -> str:
        """What `netspec check` prints for a library."""
        n = len(self.blocks)
        return f"{self.name}: library of {n} block{'' if n == 1 else 's'}, all parse: " \
               f"{', '.join(self.blocks)}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object that `netspec check --json` prints for a library."""
        return {"library": self.name, "file": self.filename, "blocks": self.blocks,
                "warnings": [w.as_dict() for w in self.warnings]}


def _is_library(nodes: list) -> bool:
    from .syntax.tree import BlockDef, Use
    return bool(nodes) and all(isinstance(n, (BlockDef, Use)) for n in nodes)


def parse(text: str, filename: str | None = None, *, library: bool = False,
          input_shape: tuple[int, ...] | None = None) -> Network:
    """Parse and check a spec; return the Network or raise every error found.

    `input_shape` (H, W, C) replaces the size the spec's `input` gives: the same
    network at another input size, without editing the spec.

    Raises a `NetspecError` subclass (the first error, with all of them in its
    `errors`) carrying the line and column of the mistake. `use "lib.ns"` reads
    a library relative to `filename`'s folder (the working directory without
    one). With `library=True` a file of blocks only is returned as a `Library`
    instead of being an error.
    """
    from .source.limits import check_text
    if not isinstance(text, str):
        raise TypeError(f"parse() takes the spec's text as a str, not {type(text).__name__}")
    if filename is not None and not isinstance(filename, str):
        raise TypeError(f"parse()'s filename is a str or None, not {type(filename).__name__}")
    rep = Reporter(text, filename)
    check_text(text, rep)
    # Python's cyclic collector would walk every node and layer made so far, again
    # and again as they pile up (40% of the time at 50,000 layers): it waits.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, filename, library, input_shape, rep)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, filename: str | None, library: bool,
           input_shape: tuple[int, ...] | None, rep: Reporter) -> Network:
    """`parse`, once the text is known to be within the limits."""
    from .language.builder import Builder
    from .language.parser import parse_tree
    from .syntax.tree import Use
    own = parse_tree(text, rep).body if not rep.errors else []
    nodes = own
    if any(isinstance(n, Use) for n in own):
        from .language.library import Libraries  # and pathlib with it: only `use` needs them
        nodes = Libraries(rep, filename).expand(own)
    name = os.path.splitext(os.path.basename(filename))[0] if filename and filename != "<stdin>" \
        else "network"
    builder = Builder(rep, input_shape)
    if _is_library(own) and not rep.errors:
        blocks = builder.define(nodes)
        if not library:
            rep.error(None, f"{filename or 'the spec'} is a library of blocks, not a network",
                      SpecError, hint="use it from a spec: `use \"" +
                      (os.path.basename(filename) if filename else "lib.ns") + "\"`")
        rep.raise_errors()
        return Library(name, [b for b, file in blocks if file is None], filename,
                       rep.warnings)  # type: ignore[return-value]
    layers = builder.build(nodes) if not rep.errors else []
    rep.raise_errors()
    net = Network(name, layers, rep.warnings, filename, text, builder.tree,
                  (builder.blocks, builder.statements))
    net.sources = rep.texts
    from .analysis.lint import lint
    lint(net, nodes, rep, resized=input_shape is not None)
    return net


def load(path: str | os.PathLike[str], *, library: bool = False,
         input_shape: tuple[int, ...] | None = None) -> Network:
    """Read and check the spec at `path` (see `parse`)."""
    path = os.fspath(path)
    try:
        text = decode_spec(read_limited(path))
    except (OSError, ValueError) as err:   # unreadable, too large, not UTF-8
        why = getattr(err, "strerror", None) or err
        raise SpecError(Diagnostic("error", f"cannot read spec: {why}", str(path))) from None
    return parse(text, str(path), library=library, input_shape=input_shape)

