"""The ONNX graph a network lowers into: what each kind's `onnx` method writes through.

Nodes, values and initializers are named after the layers (`conv1`, `conv1.weight`),
each node's doc_string is its spec line, and every value's shape is recorded, so
Netron shows the spec itself. `same` padding arrives as the explicit pads netspec
decided, so every runtime agrees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ... import __version__
from ...kinds.base import Layer
from ...source.diagnostics import NetspecError

if TYPE_CHECKING:
    from ...network import Network

#: The default opset: current, and run by every onnxruntime netspec supports.
DEFAULT_OPSET = 21
MIN_OPSET = 13
#: The IR version that shipped with each opset, so older runtimes accept older opsets.
IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


class Graph:
    """The graph under construction: nodes, initializers and value shapes (the
    `OnnxGraph` a kind's `onnx` method is given)."""

    def __init__(self, net: Network, weights: dict[str, np.ndarray], opset: int) -> None:
        self.net = net
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.arrays: list[tuple[str, np.ndarray]] = []   # initializers, by name
        self.value_info: list[onnx.ValueInfoProto] = []

    def node(self, layer: Layer, op: str, inputs: list[str], output: str | list[str],
             name: str | None = None, **attrs: Any) -> str:
        outputs = [output] if isinstance(output, str) else output
        where = f"{layer.pos.file or self.net.filename or self.net.name}:{layer.line}"
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name or layer.name,
                                           doc_string=f"{where}: {layer.text}", **attrs))
        return layer.name if not isinstance(output, str) else output

    def weight(self, layer: Layer, suffix: str, shape: tuple[int, ...] | None = None,
               name: str | None = None) -> str:
        key = layer.weight_key(suffix)
        array = np.asarray(self.weights[key], np.float32, order="C")
        self.arrays.append((name or key, array if shape is None else array.reshape(shape)))
        return name or key

    def constant(self, name: str, value: Any) -> str:
        self.arrays.append((name, np.asarray(value, np.float32, order="C")))
        return name

    def int64s(self, layer: Layer, name: str, values: list[int]) -> str:
        return self.node(layer, "Constant", [], name, name=name,
                         value=numpy_helper.from_array(np.array(values, np.int64), name))

    def int64_initializer(self, name: str, values: list[int]) -> str:
        self.arrays.append((name, np.array(values, np.int64)))
        return name

    def record(self, name: str, shape: tuple[int, ...]) -> None:
        self.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                             ["N", *nchw(shape)]))


def nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """netspec's H×W×C as ONNX's C×H×W (a vector as it is)."""
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def tensor(name: str, array: np.ndarray | None = None,
           dtype: np.dtype | None = None) -> onnx.TensorProto:
    """An initializer: the array's bytes as raw data, or only its header if None.

    float32, except the int64 shape-like inputs some operators take (Pad's pads).
    """
    dtype = array.dtype if array is not None else dtype
    t = TensorProto(name=name, data_type=TensorProto.INT64 if dtype == np.int64 else
                    TensorProto.FLOAT, dims=() if array is None else array.shape)
    if array is not None:
        t.raw_data = array.tobytes()
    return t


def newest_opset() -> int:
    """The newest opset the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


def skeleton(net: Network, weights: dict[str, np.ndarray],
             opset: int | None) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The model without its initializers, and the initializer arrays in order."""
    opset = DEFAULT_OPSET if opset is None else opset
    if not MIN_OPSET <= opset <= newest_opset():
        raise NetspecError(f"opset {opset} is not supported: use {MIN_OPSET} to {newest_opset()}")
    g = Graph(net, weights, opset)
    for layer in net.layers[1:]:
        if layer.aux:
            continue   # an aux head is not computed at inference, so not exported
        x = layer.onnx(g, *(i.name for i in layer.inputs))
        g.record(x, layer.output_shape)
    if len(net.layers) == 1:   # only an input: the graph still needs a node
        g.node(net.layers[0], "Identity", [net.layers[0].name], "output", name="output")
        g.record("output", net.input_shape)
    output = g.value_info.pop()
    graph = helper.make_graph(
        g.nodes, net.name,
        [helper.make_tensor_value_info(net.layers[0].name, TensorProto.FLOAT,
                                       ["N", *nchw(net.input_shape)])],
        [output], value_info=g.value_info, doc_string=net.source)
    model = helper.make_model(graph, producer_name="netspec", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)],
                              doc_string=f"{net.name}, exported by netspec from "
                                         f"{net.filename or 'a spec'}")
    model.ir_version = min(model.ir_version, IR_FOR_OPSET.get(opset, model.ir_version))
    return model, g.arrays


def to_onnx(net: Network, weights: dict[str, np.ndarray], opset: int | None = None) -> onnx.ModelProto:
    """The checked network with its (checked) weights as an in-memory ONNX model."""
    model, arrays = skeleton(net, weights, opset)
    model.graph.initializer.extend(tensor(name, a) for name, a in arrays)
    return model
