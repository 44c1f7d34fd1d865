"""ONNX export and the onnxruntime backend.

Each layer kind lowers to standard ONNX operators (Conv, MaxPool, AveragePool,
Relu, Tanh, Sigmoid, Softmax, BatchNormalization, Dropout, Flatten, Gemm, Add,
Concat, Mul, HardSwish, HardSigmoid, LeakyRelu, Gelu or Erf), with
the pads, strides and shapes netspec already decided: `same` becomes explicit
`pads`, so every runtime agrees. Nodes, values and initializers are named after
the layers (`conv1`, `conv1.weight`), each node's doc_string is its spec line,
and every value's shape is recorded, so Netron shows the spec itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from . import __version__, onnx_ops
from .source.diagnostics import Diagnostic, InputError, NetspecError
from .source.files import atomic_write, unwinding_on_signals
from .kinds import Layer
from .numpy_backend import prepare_input
from .numpy_backend.pool import averaging_matrix

if TYPE_CHECKING:
    import onnxruntime

    from .network import Network

#: The default opset: current, and run by every onnxruntime netspec supports.
DEFAULT_OPSET = 21
MIN_OPSET = 13
#: Protobuf cannot serialise a model of 2 GiB or more; beyond this, weights go
#: to a separate file beside the .onnx (ONNX external data).
EXTERNAL_DATA_BYTES = 2**31 - 2**26


class _Graph:
    """The graph under construction: nodes, initializers and value shapes."""

    def __init__(self, net: Network, weights: dict[str, np.ndarray], opset: int) -> None:
        self.net = net
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.arrays: list[tuple[str, np.ndarray]] = []   # initializers, by name
        self.value_info: list[onnx.ValueInfoProto] = []

    def node(self, layer: Layer, op: str, inputs: list[str], output: str, name: str | None = None,
             **attrs: Any) -> str:
        where = f"{layer.pos.file or self.net.filename or self.net.name}:{layer.line}"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name or layer.name,
                                           doc_string=f"{where}: {layer.text}", **attrs))
        return output

    def weight(self, layer: Layer, suffix: str, shape: tuple[int, ...] | None = None) -> str:
        """The initializer of one of the layer's arrays (reshaped to `shape` if given)."""
        name = layer.weight_key(suffix)
        array = np.asarray(self.weights[name], np.float32, order="C")
        self.arrays.append((name, array if shape is None else array.reshape(shape)))
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        self.arrays.append((name, np.asarray(value, np.float32, order="C")))
        return name

    def record(self, name: str, shape: tuple[int, ...]) -> None:
        self.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                             ["N", *_nchw(shape)]))


def _tensor(name: str, array: np.ndarray | None = None,
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


def _nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def _pads(pads: tuple[tuple[int, int], tuple[int, int]]) -> list[int]:
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


def _conv(g: _Graph, layer: Layer, x: str) -> str:
    weights = [g.weight(layer, "weight")] + ([g.weight(layer, "bias")] if layer.bias else [])
    return g.node(layer, "Conv", [x, *weights], layer.name, kernel_shape=list(layer.kernel),
                  strides=list(layer.strides), pads=_pads(layer.pads),
                  dilations=[layer.dilation] * 2, group=layer.groups)


def _pool(g: _Graph, layer: Layer, x: str) -> str:
    if layer.global_pool:
        return g.node(layer, "GlobalMaxPool" if layer.mode == "max" else "GlobalAveragePool",
                      [x], layer.name)
    attrs = dict(kernel_shape=list(layer.kernel), strides=list(layer.strides),
                 pads=_pads(layer.floor_pads()))
    if layer.mode == "max":
        return g.node(layer, "MaxPool", [x], layer.name, **attrs)
    if layer.count_pad and layer.floor_pads() == layer.pads:
        return g.node(layer, "AveragePool", [x], layer.name, count_include_pad=1, **attrs)
    if layer.count_pad:   # count the written padding but not the cells `ceil` adds past it
        x = g.node(layer, "Pad", [x, _pad_amounts(g, layer)], f"{layer.name}.padded",
                   name=f"{layer.name}.pad")
        g.record(x, (layer.input_shape[0] + sum(layer.pads[0]),
                     layer.input_shape[1] + sum(layer.pads[1]), layer.input_shape[2]))
        (_, b), (_, r) = layer.pads
        (_, fb), (_, fr) = layer.floor_pads()
        attrs["pads"] = [0, 0, max(0, fb - b), max(0, fr - r)]
    return g.node(layer, "AveragePool", [x], layer.name, count_include_pad=0, **attrs)


def _pad_amounts(g: _Graph, layer: Layer) -> str:
    """The `pads` input of an ONNX Pad over N, C, H, W: zeros around H and W."""
    (t, b), (left, r) = layer.pads
    name = f"{layer.name}.pads"
    g.arrays.append((name, np.array([0, 0, t, left, 0, 0, b, r], np.int64)))
    return name


def _adaptive_pool(g: _Graph, layer: Layer, x: str) -> str:
    """AveragePool where the output divides the input (equal windows); otherwise two
    MatMuls with constant averaging matrices, over W then H (exact for any sizes)."""
    (h, w), (oh, ow) = layer.input_shape[:2], layer.size
    if layer.uniform():
        kernel = [h // oh, w // ow]
        return g.node(layer, "AveragePool", [x], layer.name, kernel_shape=kernel,
                      strides=kernel)
    rows, cols = layer.windows()
    a_w = g.constant(f"{layer.name}.cols", averaging_matrix(cols, w).T)   # (W, ow)
    a_h = g.constant(f"{layer.name}.rows", averaging_matrix(rows, h))     # (oh, H)
    t = g.node(layer, "MatMul", [x, a_w], f"{layer.name}.w", name=f"{layer.name}.over_w")
    g.record(t, (h, ow, layer.output_shape[2]))
    return g.node(layer, "MatMul", [a_h, t], layer.name)


def _fc(g: _Graph, layer: Layer, x: str) -> str:
    if len(layer.input_shape) != 1:
        x = g.node(layer, "Flatten", [x], f"{layer.name}.flat", name=f"{layer.name}.flatten",
                   axis=1)
        g.record(x, (layer.in_features,))
    return g.node(layer, "Gemm", [x, g.weight(layer, "weight"), g.weight(layer, "bias")],
                  layer.name, transB=1)


def _bn(g: _Graph, layer: Layer, x: str) -> str:
    inputs = [x] + [g.weight(layer, s) for s in ("weight", "bias", "running_mean", "running_var")]
    return g.node(layer, "BatchNormalization", inputs, layer.name, epsilon=layer.eps)


def _dropout(g: _Graph, layer: Layer, x: str) -> str:
    ratio = g.constant(f"{layer.name}.ratio", np.array(layer.rate, np.float32))
    return g.node(layer, "Dropout", [x, ratio], layer.name)   # inference: the identity


def _relu6(g: _Graph, layer: Layer, x: str) -> str:
    bounds = [g.constant(f"{layer.name}.{k}", np.array(v, np.float32))
              for k, v in (("min", 0), ("max", 6))]
    return g.node(layer, "Clip", [x, *bounds], layer.name)


def _silu(g: _Graph, layer: Layer, x: str) -> str:
    gate = g.node(layer, "Sigmoid", [x], f"{layer.name}.sigmoid", name=f"{layer.name}.sigmoid")
    g.record(gate, layer.output_shape)
    return g.node(layer, "Mul", [x, gate], layer.name)


def _gelu(g: _Graph, layer: Layer, x: str) -> str:
    """Gelu from opset 20; before, its definition x·(1 + erf(x/√2))/2 in Div, Erf, Add, Mul."""
    if g.opset >= 20:
        return g.node(layer, "Gelu", [x], layer.name, approximate="none")
    steps = (("Div", "scaled", g.constant(f"{layer.name}.sqrt2", np.array(np.sqrt(2), np.float32))),
             ("Erf", "erf", None),
             ("Add", "plus1", g.constant(f"{layer.name}.one", np.array(1, np.float32))),
             ("Mul", "times_x", x),
             ("Mul", None, g.constant(f"{layer.name}.half", np.array(0.5, np.float32))))
    value = x
    for op, suffix, operand in steps:
        out = f"{layer.name}.{suffix}" if suffix else layer.name
        value = g.node(layer, op, [value] + ([operand] if operand else []), out, name=out)
        if suffix:
            g.record(value, layer.output_shape)
    return value


def _hswish(g: _Graph, layer: Layer, x: str) -> str:
    """HardSwish from opset 14; in opset 13, x·HardSigmoid(x)."""
    if g.opset >= 14:
        return g.node(layer, "HardSwish", [x], layer.name)
    gate = g.node(layer, "HardSigmoid", [x], f"{layer.name}.hsigmoid",
                  name=f"{layer.name}.hsigmoid", alpha=1 / 6, beta=0.5)
    g.record(gate, layer.output_shape)
    return g.node(layer, "Mul", [x, gate], layer.name)


def _lrn(g: _Graph, layer: Layer, x: str) -> str:
    return g.node(layer, "LRN", [x], layer.name, size=layer.size, alpha=layer.alpha,
                  beta=layer.beta, bias=layer.k)


def _simple(op: str, **attrs: Any) -> Callable[[_Graph, Layer, str], str]:
    return lambda g, layer, *xs: g.node(layer, op, list(xs), layer.name, **attrs)


#: How each layer kind lowers to ONNX: (graph, layer, input values) → output value.
LOWERINGS: dict[str, Callable[..., str]] = {
    "conv": _conv, "pool": _pool, "fc": _fc, "bn": _bn, "dropout": _dropout, "lrn": _lrn,
    "flatten": _simple("Flatten", axis=1), "relu": _simple("Relu"), "relu6": _relu6,
    "tanh": _simple("Tanh"), "sigmoid": _simple("Sigmoid"), "softmax": _simple("Softmax", axis=1),
    "add": _simple("Add"), "concat": _simple("Concat", axis=1), "mul": _simple("Mul"),
    "silu": _silu, "gelu": _gelu, "hswish": _hswish,
    "hsigmoid": _simple("HardSigmoid", alpha=1 / 6, beta=0.5),
    "leaky": lambda g, layer, x: g.node(layer, "LeakyRelu", [x], layer.name, alpha=layer.slope),
    "adaptive_pool": _adaptive_pool,
}
LOWERINGS.update(onnx_ops.LOWERINGS)   # layer norm, linear, split, shuffle, deconv, upsample


def newest_opset() -> int:
    """The newest opset the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


def _skeleton(net: Network, weights: dict[str, np.ndarray],
              opset: int | None) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The model without its initializers, and the initializer arrays in order."""
    opset = DEFAULT_OPSET if opset is None else opset
    if not MIN_OPSET <= opset <= newest_opset():
        raise NetspecError(f"opset {opset} is not supported: use {MIN_OPSET} to {newest_opset()}")
    g = _Graph(net, weights, opset)
    for layer in net.layers[1:]:
        if layer.aux:
            continue   # an aux head is not computed at inference, so not exported
        if layer.kind not in LOWERINGS:
            raise NotImplementedError(f"the ONNX exporter has no `{layer.kind}` layer")
        x = LOWERINGS[layer.kind](g, layer, *(i.name for i in layer.inputs))
        g.record(x, layer.output_shape)
    if len(net.layers) == 1:   # only an input: the graph still needs a node
        g.node(net.layers[0], "Identity", [net.layers[0].name], "output", name="output")
        g.record("output", net.input_shape)
    output = g.value_info.pop()
    graph = helper.make_graph(
        g.nodes, net.name,
        [helper.make_tensor_value_info(net.layers[0].name, TensorProto.FLOAT,
                                       ["N", *_nchw(net.input_shape)])],
        [output], value_info=g.value_info, doc_string=net.source)
    model = helper.make_model(graph, producer_name="netspec", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)],
                              doc_string=f"{net.name}, exported by netspec from "
                                         f"{net.filename or 'a spec'}")
    model.ir_version = min(model.ir_version, _IR_FOR_OPSET.get(opset, model.ir_version))
    return model, g.arrays


def to_onnx(net: Network, weights: dict[str, np.ndarray], opset: int | None = None) -> onnx.ModelProto:
    """The checked network with its (checked) weights as an in-memory ONNX model."""
    model, arrays = _skeleton(net, weights, opset)
    model.graph.initializer.extend(_tensor(name, a) for name, a in arrays)
    return model


#: The IR version that shipped with each opset, so older runtimes accept older opsets.
_IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """Protobuf tag and length of a length-delimited field."""
    return _varint(number << 3 | 2) + _varint(length)


# Protobuf field numbers, from onnx.proto.
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def save_onnx(net: Network, weights: dict[str, np.ndarray], path: str | Path,
              opset: int | None = None) -> dict[str, Any]:
    """Write the network as an .onnx file, streaming each weight array from memory.

    The file is byte-for-byte a serialised ModelProto, but written field by field,
    so export needs no second or third copy of the weights (protobuf's own
    serialisation would hold the model and its bytes at once). Past 2 GB the
    weights go to `PATH.ID.data` beside it as ONNX external data, ID being unique
    to this export. Atomic, the pair too: the data file is written first under
    its new name, then the .onnx that references it is renamed into place, then
    the data files of earlier exports to PATH are removed, so the .onnx on disk
    always references complete data of its own export. A failed export leaves
    no partial file. Returns {"opset": N, "external": data file or None}.
    """
    path = Path(path)
    model, arrays = _skeleton(net, weights, opset)
    external = sum(a.nbytes for _, a in arrays) >= EXTERNAL_DATA_BYTES
    location = f"{path.name}.{os.urandom(8).hex()}.data"
    heads: list[tuple[bytes, np.ndarray | None]] = []
    offset = 0
    for name, array in arrays:
        t = _tensor(name, dtype=array.dtype)
        t.dims.extend(array.shape)
        if external:
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", offset), ("length", array.nbytes)):
                t.external_data.add(key=key, value=str(value))
            offset += array.nbytes
            heads.append((t.SerializeToString(), None))
        else:
            heads.append((t.SerializeToString() + _field(_TENSOR_RAW_DATA, array.nbytes), array))
    entries = [(_field(_GRAPH_INITIALIZER, len(h) + (a.nbytes if a is not None else 0)), h, a)
               for h, a in heads]
    graph = model.graph.SerializeToString()
    model.ClearField("graph")
    graph_len = len(graph) + sum(len(f) + len(h) + (a.nbytes if a is not None else 0)
                                 for f, h, a in entries)

    def write_model(f: Any) -> None:
        f.write(model.SerializeToString())
        f.write(_field(_MODEL_GRAPH, graph_len))
        f.write(graph)
        for field, head, array in entries:
            f.write(field)
            f.write(head)
            if array is not None:
                f.write(memoryview(array).cast("B"))

    def write_data(f: Any) -> None:
        for _, array in arrays:
            f.write(memoryview(array).cast("B"))

    stale = _data_files_of(path)
    with unwinding_on_signals():   # a SIGTERM between the two writes removes the new data
        if external:
            atomic_write(path.parent / location, write_data)
        try:
            atomic_write(path, write_model)
        except BaseException:
            if external:
                (path.parent / location).unlink(missing_ok=True)
            raise
    for name in stale - {location}:
        (path.parent / name).unlink(missing_ok=True)
    return {"opset": model.opset_import[0].version, "external": location if external else None}


def _data_files_of(path: Path) -> set[str]:
    """External data files that exports to `path` wrote and may have left behind.

    Those the current .onnx references (only plain names in its folder), and any
    `PATH.ID.data` (an export killed between writing its data and its model).
    """
    names: set[str] = set()
    pattern = re.compile(re.escape(path.name) + r"\.[0-9a-f]{16}\.data")
    try:
        names.update(p.name for p in path.parent.iterdir() if pattern.fullmatch(p.name))
        if path.is_file() and path.stat().st_size < 2**26:   # an external-data .onnx is small
            old = onnx.load(str(path), load_external_data=False)
            for t in old.graph.initializer:
                for entry in t.external_data:
                    if (entry.key == "location" and "/" not in entry.value
                            and "\\" not in entry.value and entry.value.startswith(path.name)
                            and entry.value.endswith(".data")):
                        names.add(entry.value)
    except Exception:  # an unreadable old file or folder: nothing to clean up
        pass
    names.discard(path.name)
    return names


def _session(model: onnx.ModelProto | str) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session, or a NetspecError saying why onnxruntime refused."""
    import onnxruntime as ort
    where = model if isinstance(model, str) else None
    options = ort.SessionOptions()
    options.log_severity_level = 3   # errors become NetspecErrors; no warnings on stderr
    try:
        source = model if isinstance(model, str) else model.SerializeToString()
        with contextlib.redirect_stdout(io.StringIO()):   # its "EP Error ... retrying" prints
            return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise NetspecError(Diagnostic("error", f"cannot load ONNX model: {err}", where)) from None


class OnnxModel:
    """The network exported to ONNX and run by onnxruntime (CPU): `model(x)`, like NumpyModel."""

    def __init__(self, net: Network, weights: dict[str, np.ndarray], opset: int | None = None) -> None:
        self.net = net
        if sum(np.asarray(a).nbytes for a in weights.values()) < EXTERNAL_DATA_BYTES:
            self.session = _session(to_onnx(net, weights, opset))
            return
        # protobuf cannot hold a model of 2 GiB in memory (RegNetY-128GF has 2.6 GB of
        # weights): write it with external data to a private folder and load the file
        import tempfile
        with tempfile.TemporaryDirectory(prefix="netspec-onnx-") as folder:
            path = Path(folder) / "model.onnx"
            save_onnx(net, weights, path, opset)
            self.session = _session(str(path))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.net.layers[0].name: prepare_input(self.net, x)})[0]


def run_onnx_file(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Run an .onnx file (as exported by netspec: one float input) on the batch x."""
    session = _session(str(path))
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)":
        raise NetspecError(Diagnostic("error", "netspec runs models with one float input; this "
                                      f"one takes {', '.join(i.type for i in inputs) or 'none'}",
                                      str(path)))
    outputs = session.get_outputs()
    if not outputs or outputs[0].type not in ("tensor(float)", "tensor(double)",
                                              "tensor(float16)"):
        raise NetspecError(Diagnostic("error", "netspec runs models whose first output is a "
                                      "float tensor; this one gives "
                                      f"{outputs[0].type if outputs else 'no output'}",
                                      str(path)))
    x = np.asarray(x, dtype=np.float32)
    shape = inputs[0].shape
    if shape:   # a model may leave its input's shape unsaid: onnxruntime checks it then
        want = [d if isinstance(d, int) else None for d in shape]
        if x.ndim != len(want) or any(w is not None and w != d for w, d in zip(want, x.shape)):
            dims = "×".join("N" if w is None else str(w) for w in want) or "a scalar"
            raise InputError(f"input has shape {'×'.join(map(str, x.shape))}, but {path} "
                             f"expects {dims}")
    try:
        y = session.run(None, {inputs[0].name: x})[0]
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise NetspecError(Diagnostic("error", f"onnxruntime failed: {err}", str(path))) from None
    return np.asarray(y, dtype=np.float32)
