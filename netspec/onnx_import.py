"""ONNX → netspec: read a model, one handler per operator, in topological order.

As onnx's shape inference and onnx-tool do, the graph is walked once, node by
node; each operator type has one handler (`HANDLERS`) that turns the node into a
netspec layer (`Imported`), folds it into one already made (MatMul + Add → fc),
or makes its output an alias of its input (Identity, inference Dropout handled
as a layer). An operator netspec cannot express stops the import with an error
naming the node, its op type and its position, and the layers imported up to
there (`OnnxImportError.partial`), never a guess.

The layers then go to `spec_writer`, which recovers residual and concat
structure and writes the spec. A new layer kind needs one handler here (and one
`Word`-list in its statement) and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .kinds.arith import resolve_padding, window_output_size
from .source.diagnostics import Diagnostic, NetspecError

if TYPE_CHECKING:
    import numpy as np
    import onnx

#: Oldest opset read; the newest is whatever the installed onnx knows.
MIN_OPSET = 13
#: Initializers at least this large are left out of the copy given to shape inference.
_BIG = 1024
_NAME = re.compile(r"[A-Za-z_]\w*(-\w+)*|\d+")   # a name part (`block1-0`) or a position


class OnnxImportError(NetspecError):
    """An ONNX model netspec cannot express (or read); `partial` lists the layers before it."""

    def __init__(self, diagnostic: Diagnostic | str, partial: list[Imported] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(diagnostic)
        self.partial = partial or []
        self.input_shape = input_shape


@dataclass
class Word:
    """A number in a statement: `prefix` + value (`s2`, `x64`), left out when it is `default`.

    `key` names the block parameter the number becomes when the spec writer finds
    the same statement with different numbers (`x$c`, `s$s`).
    """

    prefix: str
    value: int
    default: int | None = None
    key: str = "n"

    def text(self) -> str:
        return f"{self.prefix}{self.value}"


@dataclass
class Imported:
    """One netspec layer recovered from the graph."""

    kind: str                       # `conv`, `relu`, `add`, `concat`...
    words: list[Any]                # the statement: strings and Words
    inputs: list[str]               # value names it reads
    output: str                     # the value it writes
    path: list[str]                 # the module path that owns it (`layer1`, `0`)
    local: str                      # its own name under that path (`conv1`), or ""
    weights: dict[str, Callable[[], np.ndarray]] = field(default_factory=dict)
    where: str = ""                 # `node "/layer1/Conv" (Conv, node 3 of 60)`
    shape: tuple[int, ...] = ()     # output, netspec order (H, W, C) or (N,)
    in_shape: tuple[int, ...] = ()  # what it reads (the first input)
    exact: bool = False             # named by netspec: `path` is the scope it was written in
    node: str = ""                  # the ONNX node's name
    chunk: tuple[int, int] | None = None   # a `chunk`: (which run, of how many)
    text: str = ""                  # netspec's statement (`residual`, `add`), from the doc_string
    size_of: str = ""               # a Resize to the H×W of this value (`to branch` if it is
                                    # the branch's input, else `to HxW`)

    @property
    def required(self) -> bool:
        """Layers with weights must keep their names, so the weights load by name."""
        return bool(self.weights)

    def statement(self) -> str:
        """The statement as netspec reads it, defaults left out."""
        out = []
        for w in self.words:
            if isinstance(w, Word):
                if w.value != w.default:
                    out.append(w.text())
            else:
                out.append(w)
        return " ".join(out)

    @property
    def name(self) -> str:
        return ".".join([*self.path, self.local] if self.local else self.path)


def module_path(node_name: str) -> tuple[list[str], str]:
    """Owner path and local name from a node name.

    `torch.onnx.export` names nodes by module scope, `/layer1/layer1.0/conv1/Conv`
    (each scope either the full dotted path of a child of the previous one or a
    plain attribute name; the last part is the op), netspec by layer name,
    `layer1.0.conv1`. Both give owner `layer1.0` and local `conv1`.
    """
    if node_name.startswith("/"):
        parts: list[str] = []
        last = ""
        scopes = [s for s in node_name.split("/")[1:-1] if s]
        for scope in scopes:
            tail = scope[len(last) + 1:] if last and scope.startswith(last + ".") else scope
            parts.extend(tail.split("."))
            last = scope
    else:
        parts = node_name.split(".") if node_name else []
    parts = [p for p in parts if p]
    if not parts or not all(_NAME.fullmatch(p) for p in parts):
        return [], ""
    return parts[:-1], parts[-1]


class _Reader:
    """The walk over one graph: values, constants, shapes and the layers made so far."""

    def __init__(self, model: onnx.ModelProto, filename: str | None) -> None:
        self.model = model
        self.filename = filename
        graph = model.graph
        self.consts: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.values: dict[str, Any] = {}        # small constant values (numpy), by name
        self.alias: dict[str, str] = {}         # value → the value it equals
        self.layers: list[Imported] = []
        self.producer: dict[str, Imported] = {}
        self.uses: dict[str, int] = {}
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self.index = 0
        self.over_w: dict[str, tuple[str, int]] = {}   # x·A_w awaiting its A_h· (adaptive pool)
        self.unbiased: set[str] = set()   # fc layers from a MatMul, whose Add may be the bias
        self.sizes: dict[str, list[Any]] = {}   # values of shape computations (`x.size(0)`)
        #: where each of those sizes comes from: (value, axis) of a Shape, None for a constant
        self.origins: dict[str, list[tuple[str, int] | None]] = {}
        self.input_name = ""
        self.gelu: dict[str, tuple[str, str]] = {}   # gelu's steps so far: value → (step, x)
        self.shuffle: dict[str, tuple[str, str, int]] = {}   # the shuffle's steps: (step, x, G)
        self.nhwc: dict[str, str] = {}   # a volume with its channels moved last → the volume
        self.normed: dict[str, tuple[onnx.NodeProto, str]] = {}   # layer norm over channels last
        self.node: onnx.NodeProto | None = None
        self.input_shape: tuple[int, ...] | None = None
        #: a model netspec exported names every layer; keep even the names of those
        #: without weights (a torch export's `relu_1` is better replaced by netspec's own)
        self.all_names = model.producer_name == "netspec"
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1

    # ---- errors ------------------------------------------------------------
    def where(self, node: onnx.NodeProto) -> str:
        name = f'"{node.name}"' if node.name else "(unnamed)"
        return f"node {name} ({node.op_type}, node {self.index + 1} of {len(self.model.graph.node)})"

    def fail(self, message: str, hint: str | None = None) -> None:
        where = self.where(self.node) + ": " if self.node is not None else ""
        raise OnnxImportError(Diagnostic("error", where + message, self.filename, hint=hint),
                              self.layers, self.input_shape)

    # ---- values --------------------------------------------------------------
    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def is_const(self, name: str) -> bool:
        name = self.resolve(name)
        return name in self.consts or name in self.values

    def array(self, name: str) -> np.ndarray:
        """A constant input's value (an initializer or a Constant node's)."""
        import numpy as np
        from onnx import numpy_helper
        name = self.resolve(name)
        if name in self.values:
            return np.asarray(self.values[name])
        if name not in self.consts:
            self.fail(f"`{name}` must be a constant (an initializer) for netspec to read it")
        return numpy_helper.to_array(self.consts[name], base_dir=self.base_dir)

    def lazy(self, name: str, transform: Callable[[np.ndarray], np.ndarray] | None = None
             ) -> Callable[[], np.ndarray]:
        """The weight array, read only when the weights are asked for (check needs none)."""
        import numpy as np
        name = self.resolve(name)
        self.array_dims(name)
        return lambda: np.ascontiguousarray(
            (transform or (lambda a: a))(self.array(name)), dtype=np.float32)

    def array_dims(self, name: str) -> tuple[int, ...]:
        name = self.resolve(name)
        if name in self.values:
            return tuple(self.values[name].shape)
        if name not in self.consts:
            self.fail(f"`{name}` must be a constant (an initializer) for netspec to read it")
        return tuple(self.consts[name].dims)

    def scalar(self, name: str, what: str) -> float:
        a = self.array(name)
        if a.size != 1:
            self.fail(f"{what} must be a single number, not an array of shape {tuple(a.shape)}")
        return float(a.reshape(()))

    def shape(self, name: str) -> tuple[Any, ...]:
        """The value's ONNX shape (N, C, H, W) with "N" for the batch."""
        name = self.resolve(name)
        if name not in self.shapes:
            self.fail(f"the shape of `{name}` is unknown (ONNX shape inference could not tell)")
        return self.shapes[name]

    def layer_input(self, name: str) -> str:
        name = self.resolve(name)
        if self.is_const(name):
            self.fail(f"input `{name}` is a constant where netspec expects the flowing value")
        return name

    # ---- making layers ------------------------------------------------------------
    def emit(self, node: onnx.NodeProto, kind: str, words: list[Any], inputs: list[str],
             weights: dict[str, Callable[[], np.ndarray]] | None = None,
             output: int = 0, out: str | None = None) -> Imported:
        """A layer from `node`, writing its output `output` (or the value `out`)."""
        path, local = module_path(node.name)
        if weights and len(node.input) > 1 and node.input[1].endswith(".weight"):
            # the weight's own name is the state_dict key (`layer1.0.conv1.weight`): the
            # surest name, where the exporter kept it (not for batch norm folded into a conv)
            by_weight = module_path(node.input[1][:-len(".weight")])
            if by_weight[1]:
                path, local = by_weight
        out = out or node.output[output]
        shape = self.shape(out)
        if not self.all_names and not weights and not local.isdigit():
            local = ""
        layer = Imported(kind, words, [self.layer_input(i) for i in inputs], out, path, local,
                         weights or {}, self.where(node), _netspec_shape(shape),
                         _netspec_shape(self.shape(inputs[0])), self.all_names, node.name)
        if self.all_names:
            layer.text = node.doc_string.split(": ", 1)[-1]
        self.layers.append(layer)
        self.producer[out] = layer
        return layer

    @property
    def base_dir(self) -> str:
        return str(Path(self.filename).parent) if self.filename else ""


def _netspec_shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    dims = tuple(shape[1:])
    return (dims[1], dims[2], dims[0]) if len(dims) == 3 else dims


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _square(r: _Reader, values: list[int], what: str) -> int:
    if len(set(values)) != 1:
        r.fail(f"{what} {values} differs between height and width",
               hint="netspec writes one number for both axes")
    return values[0]


def _padding(r: _Reader, a: dict[str, Any], x: tuple[Any, ...], kernel: list[int],
             strides: list[int], dilation: int, pool: bool, out: tuple[Any, ...]) -> list[Any]:
    """The netspec padding words that give the same windows as the node's padding.

    Two paddings give the same windows when they pad the same before the input
    and give the same number of outputs (what lies past the last window is never
    read, and pooling ignores padding), so the candidates `pN`, `pN ceil`, `same`
    and `valid` are compared on that: netspec itself writes `pool … ceil` as the
    padding that floor rounding needs.
    """
    n = x[2:]
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, f, s in zip(n, kernel, strides):
            total = max((-(-size // s) - 1) * s + dilation * (f - 1) + 1 - size, 0)
            pads.append(total - total // 2 if auto == "SAME_LOWER" else total // 2)
        before = pads
    elif auto == "VALID":
        before = [0, 0]
    else:
        p = list(a.get("pads", [0, 0, 0, 0]))
        before = p[:2]
    want = [int(o) for o in out[2:]]
    ceil = bool(a.get("ceil_mode", 0))
    candidates: list[tuple[Any, bool]] = [(Word("p", before[0], 0, "p"), ceil)] \
        if before[0] == before[1] else []
    if pool and candidates and not ceil:
        candidates.append((candidates[0][0], True))
    candidates += [("same", False), ("valid", False)]
    for cand, rounding_up in candidates:
        padding = cand.value if isinstance(cand, Word) else cand
        got = []
        for size, f, s in zip(n, kernel, strides):
            pads = resolve_padding(padding, size, f, s, dilation)
            got.append((pads[0], window_output_size(size, f, pads, s, dilation, rounding_up)))
        if got == list(zip(before, want)):
            return [cand, *(["ceil"] if rounding_up else [])]
    r.fail(f"padding {a.get('pads', auto)} is not expressible as netspec's `pN`, `same` "
           f"or `valid` for this input", hint="netspec pads each axis symmetrically, or as "
                                            "`same` (the odd pixel at the end)")
    raise AssertionError   # fail() raised


def _linear(r: _Reader, node: onnx.NodeProto) -> None:
    """The 1×1 Conv netspec writes for `linear N` on a volume (its doc_string says so)."""
    units, c = r.array_dims(node.input[1])[:2]
    words: list[Any] = ["linear", Word("", units, None, "n")]
    weights = {"weight": r.lazy(node.input[1], lambda w: w.reshape(units, c))}
    if len(node.input) > 2 and node.input[2]:
        weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
    else:
        words.append("nobias")
    r.emit(node, "linear", words, [node.input[0]], weights)


def _conv(r: _Reader, node: onnx.NodeProto) -> None:
    if r.all_names and re.search(r": linear \d", node.doc_string):
        _linear(r, node)
        return
    a = _attrs(node)
    x, w = node.input[0], node.input[1]
    k, _, *kernel = r.array_dims(w)
    if len(kernel) != 2:
        r.fail(f"a {len(kernel)}-D convolution: netspec convolves over height and width only")
    strides = list(a.get("strides", [1, 1]))
    dilation = _square(r, list(a.get("dilations", [1, 1])), "dilation")
    stride = _square(r, strides, "stride")
    words: list[Any] = ["conv", f"{kernel[0]}x{kernel[1]}", Word("s", stride, 1, "s")]
    words += _padding(r, a, r.shape(x), kernel, strides, dilation, False, r.shape(node.output[0]))
    words += [Word("d", dilation, 1, "d"), Word("g", int(a.get("group", 1)), 1, "g")]
    bias = len(node.input) > 2 and node.input[2] != ""
    weights = {"weight": r.lazy(w)}
    if bias:
        weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
    else:
        words.append("nobias")
    words.append(Word("x", k, None, "c"))
    r.emit(node, "conv", words, [x], weights)


def _deconv(r: _Reader, node: onnx.NodeProto) -> None:
    """ConvTranspose: netspec's `deconv`, pads the same on every side."""
    a = _attrs(node)
    x, w = node.input[0], node.input[1]
    _, k_per_group, *kernel = r.array_dims(w)
    if len(kernel) != 2:
        r.fail(f"a {len(kernel)}-D transposed convolution: netspec works over height and width")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "output_shape" in a:
        r.fail("a transposed convolution sized by auto_pad or output_shape: netspec reads "
               "explicit pads and output_padding")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    groups = int(a.get("group", 1))
    stride = _square(r, list(a.get("strides", [1, 1])), "stride")
    dilation = _square(r, list(a.get("dilations", [1, 1])), "dilation")
    padding = _square(r, pads, "padding")
    extra = _square(r, list(a.get("output_padding", [0, 0])), "output padding")
    words: list[Any] = ["deconv", f"{kernel[0]}x{kernel[1]}", Word("s", stride, 1, "s"),
                        Word("p", padding, 0, "p"), Word("d", dilation, 1, "d"),
                        Word("g", groups, 1, "g"), Word("op", extra, 0, "op")]
    weights = {"weight": r.lazy(w)}
    if len(node.input) > 2 and node.input[2]:
        weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
    else:
        words.append("nobias")
    words.append(Word("x", k_per_group * groups, None, "c"))
    r.emit(node, "deconv", words, [x], weights)


def _adaptive(r: _Reader, node: onnx.NodeProto, x: str) -> None:
    out = r.shape(node.output[0])
    r.emit(node, "adaptive_pool", ["pool", "avg", "to", f"{out[2]}x{out[3]}"], [x])


def _pool(mode: str) -> Callable[[_Reader, onnx.NodeProto], None]:
    def handler(r: _Reader, node: onnx.NodeProto) -> None:
        if mode == "avg" and r.all_names and ": pool avg to " in node.doc_string:
            _adaptive(r, node, node.input[0])   # netspec's `pool avg to HxW`, windows equal
            return
        a = _attrs(node)
        kernel = list(a["kernel_shape"])
        if len(kernel) != 2:
            r.fail(f"{len(kernel)}-D pooling: netspec pools over height and width only")
        if set(a.get("dilations", [1, 1])) != {1}:
            r.fail("dilated pooling is not expressible in netspec")
        strides = list(a.get("strides", [1, 1]))
        stride = _square(r, strides, "stride")
        pad_words = _padding(r, a, r.shape(node.input[0]), kernel, strides, 1, True,
                             r.shape(node.output[0]))
        padded = any(a.get("pads", [0])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET",
                                                                                   b"VALID")
        size = f"{kernel[0]}" if kernel[0] == kernel[1] else f"{kernel[0]}x{kernel[1]}"
        words = ["pool"] + (["avg"] if mode == "avg" else []) + [size]
        words += [Word("s", stride, kernel[0] if kernel[0] == kernel[1] else None, "s")]
        words += pad_words
        if mode == "avg" and a.get("count_include_pad", 0) and padded:
            words.append("countpad")   # the padded cells count, as torch's default
        r.emit(node, "pool", words, [node.input[0]])
    return handler


def _global_pool(mode: str) -> Callable[[_Reader, onnx.NodeProto], None]:
    return lambda r, node: r.emit(node, "pool", ["pool", mode, "global"], [node.input[0]])


def _activation(kind: str) -> Callable[[_Reader, onnx.NodeProto], None]:
    return lambda r, node: r.emit(node, kind, [kind], [node.input[0]])


def _short(value: float) -> str:
    """A float32 attribute as people write it: `1e-3`, not 0.0010000000474974513."""
    plain = f"{value:.7g}"
    mantissa, exponent = f"{value:.6e}".split("e")
    sci = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return sci if len(sci) < len(plain) else plain


def _hard_sigmoid(r: _Reader, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
        r.fail(f"HardSigmoid with alpha {alpha:g}, beta {beta:g}: netspec's hsigmoid is torch's, "
               f"relu6(x + 3)/6 (alpha 1/6, beta 0.5)")
    r.emit(node, "hsigmoid", ["hsigmoid"], [node.input[0]])


def _leaky_relu(r: _Reader, node: onnx.NodeProto) -> None:
    from .kinds.activations import Leaky
    slope = float(_attrs(node).get("alpha", 0.01))
    words = ["leaky"] if abs(slope - Leaky.SLOPE) < 1e-9 else ["leaky", _short(slope)]
    r.emit(node, "leaky", words, [node.input[0]])


def _gelu(r: _Reader, node: onnx.NodeProto) -> None:
    approximate = _attrs(node).get("approximate", b"none")
    if approximate not in (b"none", "none"):
        r.fail("Gelu with the tanh approximation: netspec's gelu is the exact one (erf)")
    r.emit(node, "gelu", ["gelu"], [node.input[0]])


def _const_operand(r: _Reader, node: onnx.NodeProto) -> tuple[str, float | None]:
    """(the flowing input, the other input's value) when the other is a single constant."""
    x, y = node.input[0], node.input[1]
    if r.is_const(x):
        x, y = y, x
    if r.is_const(y) and prod(r.array_dims(y)) == 1:
        return r.resolve(x), float(r.array(y).reshape(()))
    return r.resolve(x), None


def _div(r: _Reader, node: onnx.NodeProto) -> None:
    """x / √2: the first step of gelu written as x·(1 + erf(x/√2))/2 (opsets before 20)."""
    x, c = _const_operand(r, node)
    if c is None or r.is_const(node.input[0]) or abs(c - 2 ** 0.5) > 1e-5:
        r.fail("Div is read only as the x/√2 in gelu's definition")
    r.gelu[node.output[0]] = ("div", x)


def _erf(r: _Reader, node: onnx.NodeProto) -> None:
    step = r.gelu.get(r.resolve(node.input[0]))
    if step is None or step[0] != "div":
        r.fail("Erf is read only as the erf(x/√2) in gelu's definition")
    r.gelu[node.output[0]] = ("erf", step[1])


def _mul(r: _Reader, node: onnx.NodeProto) -> None:
    """x·sigmoid(x) (silu), x·hsigmoid(x) (hswish), gelu's steps, or a gate: x × gate(x)."""
    a, b = (r.resolve(i) for i in node.input)
    x, c = _const_operand(r, node)
    step = r.gelu.get(x)
    if c is not None:
        if step is not None and step[0] == "times_x" and abs(c - 0.5) < 1e-7:
            r.emit(node, "gelu", ["gelu"], [step[1]])
            return
        r.fail("multiplying by a constant is not expressible in netspec")
    const = next((i for i in node.input if r.is_const(i)), None)
    if const is not None:   # a learnable multiplier per channel: `scale` (layer scale)
        channels = r.shape(x)[1]
        dims = r.array_dims(const)
        if prod(dims) != channels or len(dims) > 1 and dims[0] != channels:
            r.fail(f"multiplying by a constant of shape {list(dims)}: netspec's scale has one "
                   f"number per channel, shaped (C, 1, 1) or (C,)")
        r.emit(node, "scale", ["scale"], [x], {"": r.lazy(const, lambda g: g.reshape(-1, 1, 1))})
        return
    for u, v in ((a, b), (b, a)):   # u · f(u), f an activation made of u alone
        step = r.gelu.get(v)
        if step is not None and step[0] == "plus1" and step[1] == u:
            r.gelu[node.output[0]] = ("times_x", u)
            return
        f = r.producer.get(v)
        if f is not None and f.kind in ("sigmoid", "hsigmoid") and f.inputs == [u] and \
                r.uses.get(f.output) == 1:
            r.layers.remove(f)
            kind = "silu" if f.kind == "sigmoid" else "hswish"
            r.emit(node, kind, [kind], [u])
            return
    r.emit(node, "mul", ["mul"], [a, b])


def _clip(r: _Reader, node: onnx.NodeProto) -> None:
    bounds = [r.scalar(node.input[i], "a Clip bound") if len(node.input) > i and node.input[i]
              else None for i in (1, 2)]
    if bounds == [0.0, 6.0]:
        r.emit(node, "relu6", ["relu6"], [node.input[0]])
    elif bounds[0] == 0.0 and bounds[1] is None:
        r.emit(node, "relu", ["relu"], [node.input[0]])
    else:
        r.fail(f"Clip to [{bounds[0]}, {bounds[1]}]: netspec has relu (min 0) and relu6 "
               f"(min 0, max 6)")


def _softmax(r: _Reader, node: onnx.NodeProto) -> None:
    rank = len(r.shape(node.input[0]))
    axis = _attrs(node).get("axis", -1)
    if axis % rank != 1:
        r.fail(f"Softmax over axis {axis}: netspec's softmax runs over the channels (axis 1)")
    r.emit(node, "softmax", ["softmax"], [node.input[0]])


def _bn(r: _Reader, node: onnx.NodeProto) -> None:
    from .kinds import BatchNorm
    eps = float(_attrs(node).get("epsilon", 1e-5))
    if not eps > 0:
        r.fail(f"batch norm epsilon {eps:g}: it must be positive")
    weights = {suffix: r.lazy(name) for suffix, name in
               zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5])}
    words = ["bn"] if abs(eps - BatchNorm.EPSILON) <= 1e-12 else ["bn", f"eps{_short(eps)}"]
    r.emit(node, "bn", words, [node.input[0]], weights)


def _lrn(r: _Reader, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    words = ["lrn", str(a["size"]), f"a{a.get('alpha', 1e-4):g}", f"b{a.get('beta', 0.75):g}",
             f"k{a.get('bias', 1.0):g}"]
    r.emit(node, "lrn", words, [node.input[0]])


def _dropout(r: _Reader, node: onnx.NodeProto) -> None:
    rate = r.scalar(node.input[1], "the dropout ratio") if len(node.input) > 1 and \
        node.input[1] else 0.5
    r.emit(node, "dropout", ["dropout", f"{rate:g}"], [node.input[0]])


def _flatten(r: _Reader, node: onnx.NodeProto) -> None:
    if _attrs(node).get("axis", 1) != 1:
        r.fail("Flatten keeps the batch axis only with axis=1")
    r.emit(node, "flatten", ["flatten"], [node.input[0]])


def _slice(r: _Reader, node: onnx.NodeProto) -> None:
    """Slice of a shape computation (`x.shape[:2]`): the sizes it keeps."""
    if r.resolve(node.input[0]) not in r.sizes or len(node.input) > 3 and node.input[3] and \
            [int(v) for v in r.array(node.input[3]).reshape(-1)] != [0]:
        r.fail("Slice is read only in shape computations (`x.shape[:2]`)")
    start, stop = (int(r.array(node.input[i]).reshape(-1)[0]) for i in (1, 2))
    steps = node.input[4] if len(node.input) > 4 and node.input[4] else None
    if steps is not None and [int(v) for v in r.array(steps).reshape(-1)] != [1]:
        r.fail("Slice with a step is read only as x.shape[a:b]")
    _set_sizes(r, node.output[0], r.sizes[r.resolve(node.input[0])][start:stop],
               _origins(r, node.input[0])[start:stop])


def _resize(r: _Reader, node: onnx.NodeProto) -> None:
    """Resize over H×W: `upsample nearest` (asymmetric, floor: torch's `mode='nearest'`) or
    `bilinear` (half_pixel: torch's `align_corners=False`), sized as the exporter wrote it.

    `scales` (`scale_factor=2`) give a whole factor, or a size when the output is exactly
    the input times the scale (ONNX samples at the scale, netspec at output/input: they
    agree only then). `sizes` computed from a value's shape (`size=low.shape[-2:]`) give
    `to input` for the graph input; for another value, `to HxW` here, which `spec_writer`
    turns into `to branch` where that value is what the enclosing branch reads. Constant
    `sizes` give `to HxW`. A model netspec wrote says which in its nodes' doc_string.
    """
    a = {k: v.decode() if isinstance(v, bytes) else v for k, v in _attrs(node).items()}
    x, out = r.shape(node.input[0]), r.shape(node.output[0])
    mode = a.get("mode", "nearest")
    transform = a.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest" and transform == "asymmetric" and a.get("nearest_mode",
                                                                   "round_prefer_floor") == "floor":
        how = "nearest"
    elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
        how = "bilinear"
    else:
        r.fail(f"Resize with mode {mode} and {transform} coordinates: netspec upsamples "
               f"nearest (asymmetric, floor) or bilinear (half_pixel)",
               hint="torch's F.interpolate(mode='nearest') or (mode='bilinear', "
                    "align_corners=False)")
    if int(a.get("antialias", 0)):
        r.fail("Resize with antialias: netspec's upsample samples without a filter")
    if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        r.fail(f"Resize keeping the aspect ratio ({a['keep_aspect_ratio_policy']}): netspec "
               f"stretches to the size")
    if len(x) != 4 or tuple(out[:2]) != tuple(x[:2]) and out[0] != "N":
        r.fail("Resize over other axes than height and width")
    (h, w), (oh, ow) = x[2:], out[2:]
    if transform == "pytorch_half_pixel" and (oh == 1 < h or ow == 1 < w):
        r.fail("Resize with pytorch_half_pixel coordinates to a size of 1 samples the first "
               "pixel, not the centre as netspec's bilinear (torch's align_corners=False)")
    words: list[Any] = ["upsample", how]
    scales = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    sizes = node.input[3] if len(node.input) > 3 and node.input[3] else ""
    size_of = ""
    if r.all_names:
        text = node.doc_string.split(": ", 1)[-1]
        target = next((t for t in ("input", "branch") if text.endswith(f" to {t}")), None)
        if target is not None:
            words += ["to", target]
        elif oh % h == 0 and ow % w == 0 and " to " not in text:
            words.append(_factor(oh // h, ow // w))
        else:
            words += ["to", f"{oh}x{ow}"]
    elif sizes:
        origins = _origins(r, sizes) if r.resolve(sizes) in r.sizes else []
        hw = origins[-2:]
        if len(hw) == 2 and None not in hw and hw[0][0] == hw[1][0] and \
                (hw[0][1], hw[1][1]) == (2, 3):   # another value's H×W
            size_of = hw[0][0]
        words += ["to", "input" if size_of == r.input_name else f"{oh}x{ow}"]
    elif scales:
        factors = [float(v) for v in r.array(scales).reshape(-1)][-2:]
        if len(factors) != 2 or h * factors[0] != oh or w * factors[1] != ow:
            r.fail(f"Resize by scales {factors} from {h}×{w} to {oh}×{ow}: ONNX samples at "
                   f"the scale, netspec at output/input size, which differ here",
                   hint="netspec reads whole factors, or scales that give an exact size")
        whole = all(f == int(f) for f in factors)
        words += [_factor(int(factors[0]), int(factors[1]))] if whole else \
            ["to", f"{oh}x{ow}"]
    else:
        r.fail("Resize with neither scales nor sizes")
    layer = r.emit(node, "upsample", words, [node.input[0]])
    if size_of != r.input_name:
        layer.size_of = size_of


def _factor(fh: int, fw: int) -> str:
    """`2`, or `2x3` when the factors along H and W differ."""
    return f"{fh}" if fh == fw else f"{fh}x{fw}"


def _split(r: _Reader, node: onnx.NodeProto) -> None:
    """x.chunk(n, dim=1): one `chunk` layer per output read (netspec's `split { … }`)."""
    a = _attrs(node)
    x = r.shape(node.input[0])
    n = len(node.output)
    if a.get("axis", 0) % len(x) != 1:
        r.fail("Split along an axis other than the channels (axis 1)")
    sizes = [int(v) for v in r.array(node.input[1]).reshape(-1)] if len(node.input) > 1 and \
        node.input[1] else list(a.get("split", [])) or [x[1] // n] * n
    if len(set(sizes)) != 1 or sum(sizes) != x[1]:
        r.fail(f"a Split into channel runs {sizes}: netspec's split cuts equal runs")
    for i, out in enumerate(node.output):
        if r.uses.get(out, 0):
            r.emit(node, "chunk", [], [node.input[0]], output=i).chunk = (i, n)


def _layernorm(r: _Reader, node: onnx.NodeProto) -> None:
    """LayerNormalization over the channels: of a vector, or of a volume whose channels
    were moved last (Transpose, LayerNormalization, Transpose back)."""
    a = _attrs(node)
    x = r.resolve(node.input[0])
    rank = len(r.shape(x))
    if a.get("axis", -1) % rank != rank - 1 or rank == 4 and x not in r.nhwc or rank not in (2, 4):
        r.fail("LayerNormalization is read over the channels only (of a vector, or of a "
               "volume transposed to N×H×W×C and back)")
    if len(node.input) < 3 or not node.input[2]:
        r.fail("LayerNormalization without a bias: netspec's layernorm has one")
    if rank == 4:
        r.normed[node.output[0]] = (node, r.nhwc[x])
        return
    _emit_layernorm(r, node, x, node.output[0])


def _emit_layernorm(r: _Reader, node: onnx.NodeProto, x: str, out: str) -> None:
    from .kinds import LayerNorm
    eps = float(f"{float(_attrs(node).get('epsilon', 1e-5)):.6g}")   # stored as float32
    words = ["layernorm"] + ([f"eps{_short(eps)}"] if eps != LayerNorm.DEFAULT_EPSILON else [])
    weights = {suffix: r.lazy(name) for suffix, name in zip(("weight", "bias"), node.input[1:3])}
    r.emit(node, "layernorm", words, [x], weights, out=out)


def _transpose(r: _Reader, node: onnx.NodeProto) -> None:
    perm = list(_attrs(node).get("perm", []))
    x = r.resolve(node.input[0])
    if perm == [0, 2, 3, 1] and not r.is_const(x) and x not in r.shuffle:
        r.nhwc[node.output[0]] = x
        return
    if perm == [0, 3, 1, 2] and x in r.normed:
        ln, source = r.normed.pop(x)
        _emit_layernorm(r, ln, source, node.output[0])
        return
    step = r.shuffle.get(r.resolve(node.input[0]))
    if step is None or step[0] != "grouped" or perm != [0, 2, 1, 3, 4]:
        r.fail("Transpose is read only in a channel shuffle (reshape to N×G×C/G×H×W, swap the "
               "group axes, reshape back)")
    r.shuffle[node.output[0]] = ("swapped", step[1], step[2])


def _reshape(r: _Reader, node: onnx.NodeProto) -> None:
    x = r.shape(node.input[0])
    known = r.shapes.get(node.output[0], ())   # a channel shuffle's steps have known shapes
    step = r.shuffle.get(r.resolve(node.input[0]))
    if step is not None and step[0] == "swapped" and tuple(known) == tuple(r.shape(step[1])):
        r.emit(node, "shuffle", ["shuffle", Word("", step[2], None, "g")], [step[1]])
        return
    if len(x) == 4 and len(known) == 5 and known[1] * known[2] == x[1] and \
            tuple(known[3:]) == x[2:]:
        r.shuffle[node.output[0]] = ("grouped", r.layer_input(node.input[0]), int(known[1]))
        return
    target = r.sizes.get(r.resolve(node.input[1]))
    if target is None and r.is_const(node.input[1]):
        target = [int(v) for v in r.array(node.input[1]).reshape(-1)]
    if target is not None and len(target) == 2 and target[0] in (x[0], 0, "N") and \
            target[1] in (-1, prod(x[1:])):   # x.view(x.size(0), -1): the batch kept, a flatten
        r.shapes[node.output[0]] = (x[0], prod(x[1:]))
    out = r.shape(node.output[0])
    if len(out) == 2 and len(x) >= 2 and out[1] == prod(x[1:]):
        r.emit(node, "flatten", ["flatten"], [node.input[0]])
    elif tuple(out) == tuple(x):
        r.alias[node.output[0]] = r.resolve(node.input[0])
    else:
        r.fail(f"a reshape from {list(x)} to {list(out)}: netspec reshapes only by `flatten` "
               f"(N×C×H×W → N×(C·H·W))")


def _fc(r: _Reader, node: onnx.NodeProto, x: str, weight: Callable[[], np.ndarray],
        units: int, bias: Callable[[], np.ndarray] | None) -> None:
    import numpy as np
    flat = r.producer.get(r.resolve(x))
    if flat is not None and flat.kind == "flatten" and flat.where.startswith(
            f'node "{node.name}.flatten"') and r.uses.get(flat.output) == 1:
        r.layers.remove(flat)   # netspec's own `fc` on a volume: Flatten + Gemm, one layer
        x = flat.inputs[0]
    elif len(r.shape(x)) != 2:
        r.fail("a fully connected layer over a volume: netspec's fc reads a flattened vector "
               "here")
    r.emit(node, "fc", ["fc", Word("", units, None, "n")], [x],
           {"weight": weight, "bias": bias or (lambda: np.zeros(units, np.float32))})


def _gemm(r: _Reader, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        r.fail("Gemm with transA, alpha or beta: netspec's fc computes x·Wᵀ + b")
    dims = r.array_dims(node.input[1])
    units = dims[0] if a.get("transB", 0) else dims[1]
    weight = r.lazy(node.input[1], None if a.get("transB", 0) else lambda w: w.T)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if prod(r.array_dims(node.input[2])) != units:
            r.fail("a Gemm whose bias is not one number per unit")
        bias = r.lazy(node.input[2], lambda b: b.reshape(-1))
    _fc(r, node, node.input[0], weight, units, bias)


def _is_averaging(a: np.ndarray, n: int, o: int) -> bool:
    """Whether `a` (o, n) averages the windows of adaptive pooling from n cells to o."""
    import numpy as np

    from .kinds.pool import adaptive_windows
    want = np.zeros((o, n), np.float32)
    for i, (start, end) in enumerate(adaptive_windows(n, o)):
        want[i, start:end] = 1.0 / (end - start)
    return a.shape == (o, n) and np.allclose(a, want, rtol=1e-6, atol=1e-7)


def _matmul(r: _Reader, node: onnx.NodeProto) -> None:
    """x·W as fc; or, on a volume, the two averaging products of `pool avg to HxW`."""
    x, y = node.input[0], node.input[1]
    if r.is_const(x) and r.resolve(y) in r.over_w:   # A_h · (x · A_w): rows after columns
        source, ow = r.over_w.pop(r.resolve(y))
        a = r.array(x)
        if a.ndim != 2 or not _is_averaging(a, r.shape(source)[2], a.shape[0]):
            r.fail("a MatMul netspec reads only as adaptive average pooling, with other "
                   "weights")
        _adaptive(r, node, source)
        return
    if len(r.shape(x)) == 4 and r.is_const(y) and len(r.array_dims(y)) == 2:
        a = r.array(y).T
        if not _is_averaging(a, r.shape(x)[3], a.shape[0]):
            r.fail("a MatMul over a volume that is not adaptive average pooling")
        r.over_w[node.output[0]] = (r.layer_input(x), a.shape[0])
        return
    dims = r.array_dims(node.input[1])
    if len(dims) != 2:
        r.fail("MatMul by something other than a constant matrix")
    _fc(r, node, node.input[0], r.lazy(node.input[1], lambda w: w.T), dims[1], None)
    r.unbiased.add(node.output[0])


def _add(r: _Reader, node: onnx.NodeProto) -> None:
    x, y = node.input[0], node.input[1]
    if r.is_const(x):
        x, y = y, x
    step = r.gelu.get(r.resolve(x))
    if r.is_const(y) and step is not None and step[0] == "erf" and \
            abs(r.scalar(y, "an addend") - 1) < 1e-7:
        r.gelu[node.output[0]] = ("plus1", step[1])
        return
    if r.is_const(y):   # MatMul + Add: the fc's bias
        fc = r.producer.get(r.resolve(x))
        units = fc.words[-1].value if fc is not None and fc.kind == "fc" else None
        if fc is None or fc.output not in r.unbiased or r.uses.get(fc.output, 0) != 1 or \
                prod(r.array_dims(y)) != units:
            r.fail("adding a constant is expressible only as the bias of a fully connected "
                   "layer (MatMul + Add)")
        fc.weights["bias"] = r.lazy(y, lambda b: b.reshape(-1))
        r.unbiased.discard(fc.output)
        r.alias[node.output[0]] = fc.output
        return
    r.emit(node, "add", ["add"], [x, y])


def _sizes(r: _Reader, name: str) -> list[Any]:
    """A shape computation's value: sizes, "N" for the batch."""
    name = r.resolve(name)
    if name in r.sizes:
        return r.sizes[name]
    return [int(v) for v in r.array(name).reshape(-1)]


def _origins(r: _Reader, name: str) -> list[tuple[str, int] | None]:
    """Where each of a shape computation's sizes comes from (None: a constant)."""
    name = r.resolve(name)
    return r.origins.get(name) or [None] * len(_sizes(r, name))


def _set_sizes(r: _Reader, out: str, sizes: list[Any],
               origins: list[tuple[str, int] | None]) -> None:
    r.sizes[out] = sizes
    r.origins[out] = origins


def _shape(r: _Reader, node: onnx.NodeProto) -> None:
    """x.shape (from attribute `start` to `end`, opset 15), each size known by its axis."""
    a = _attrs(node)
    x = r.resolve(node.input[0])
    dims = list(r.shape(x))
    axes = list(range(len(dims)))[a.get("start", 0):a.get("end", len(dims))]
    _set_sizes(r, node.output[0], [dims[i] for i in axes], [(x, i) for i in axes])


def _gather(r: _Reader, node: onnx.NodeProto) -> None:
    if r.resolve(node.input[0]) not in r.sizes or not r.is_const(node.input[1]):
        r.fail("Gather is read only in shape computations (`x.size(0)`)")
    sizes, origins = r.sizes[r.resolve(node.input[0])], _origins(r, node.input[0])
    picked = [int(i) for i in r.array(node.input[1]).reshape(-1)]
    _set_sizes(r, node.output[0], [sizes[i] for i in picked], [origins[i] for i in picked])


def _pass_sizes(r: _Reader, node: onnx.NodeProto) -> None:
    """Unsqueeze, Squeeze, Cast of a shape computation: the same sizes."""
    if r.resolve(node.input[0]) not in r.sizes:
        r.fail(f"{node.op_type} is read only in shape computations (`x.view(x.size(0), -1)`)")
    _set_sizes(r, node.output[0], r.sizes[r.resolve(node.input[0])], _origins(r, node.input[0]))


def _concat(r: _Reader, node: onnx.NodeProto) -> None:
    if any(r.resolve(i) in r.sizes for i in node.input):   # [x.size(0), -1]
        _set_sizes(r, node.output[0], [v for i in node.input for v in _sizes(r, i)],
                   [o for i in node.input for o in _origins(r, i)])
        return
    rank = len(r.shape(node.output[0]))
    if _attrs(node).get("axis") % rank != 1:
        r.fail("Concat along an axis other than the channels (axis 1)")
    if len(node.input) == 1:
        r.alias[node.output[0]] = r.resolve(node.input[0])
        return
    r.emit(node, "concat", ["concat"], list(node.input))


def _identity(r: _Reader, node: onnx.NodeProto) -> None:
    r.alias[node.output[0]] = r.resolve(node.input[0])


def _constant(r: _Reader, node: onnx.NodeProto) -> None:
    from onnx import numpy_helper
    a = {x.name: x for x in node.attribute}
    if "value" not in a:
        r.fail("a Constant given other than as a tensor `value`")
    r.values[node.output[0]] = numpy_helper.to_array(a["value"].t)


#: How each ONNX operator becomes netspec: (reader, node) → None, emitting layers.
HANDLERS: dict[str, Callable[[_Reader, Any], None]] = {
    "Conv": _conv, "ConvTranspose": _deconv, "Split": _split, "Transpose": _transpose,
    "Slice": _slice, "Resize": _resize, "LayerNormalization": _layernorm,
    "Div": _div, "Erf": _erf, "Mul": _mul, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global_pool("avg"), "GlobalMaxPool": _global_pool("max"),
    "Relu": _activation("relu"), "Sigmoid": _activation("sigmoid"), "Tanh": _activation("tanh"),
    "HardSwish": _activation("hswish"), "HardSigmoid": _hard_sigmoid, "LeakyRelu": _leaky_relu,
    "Gelu": _gelu,
    "Clip": _clip, "Softmax": _softmax, "BatchNormalization": _bn, "LRN": _lrn,
    "Dropout": _dropout, "Flatten": _flatten, "Reshape": _reshape, "Gemm": _gemm,
    "MatMul": _matmul, "Add": _add, "Concat": _concat, "Identity": _identity,
    "Shape": _shape, "Gather": _gather, "Unsqueeze": _pass_sizes, "Squeeze": _pass_sizes,
    "Cast": _pass_sizes,
    "Constant": _constant,
}


def _infer_shapes(model: onnx.ModelProto, r: _Reader) -> dict[str, tuple[Any, ...]]:
    """Every value's shape, from ONNX shape inference on a copy without the big weights."""
    import onnx
    from onnx import helper
    graph = model.graph
    small = [t for t in graph.initializer if prod(t.dims) < _BIG and
             t.data_location != onnx.TensorProto.EXTERNAL]
    big = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
           for t in graph.initializer if t not in small]
    inputs = [i for i in graph.input if i.name not in r.consts]
    light = helper.make_model(helper.make_graph(list(graph.node), graph.name, inputs + big,
                                                list(graph.output), small),
                              opset_imports=list(model.opset_import))
    light.ir_version = model.ir_version
    try:
        light = onnx.shape_inference.infer_shapes(light, strict_mode=True, data_prop=True)
    except Exception as err:  # noqa: BLE001 (onnx raises its own error types)
        r.fail(f"ONNX shape inference failed: {str(err).strip().splitlines()[-1]}")
    shapes = {}
    for info in [*light.graph.input, *light.graph.value_info, *light.graph.output]:
        t = info.type.tensor_type
        if t.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else "N"
                                      for d in t.shape.dim)
    return shapes


def read_onnx(model: onnx.ModelProto, filename: str | None = None) -> tuple[tuple[int, ...], list[Imported], str]:
    """The network input (H, W, C) or (N,), its layers in order, and the output value."""
    from onnx import defs
    r = _Reader(model, filename)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    opset = opsets.get("ai.onnx")
    if opset is None or not MIN_OPSET <= opset <= defs.onnx_opset_version():
        r.fail(f"the model uses opset {opset}: netspec reads opsets {MIN_OPSET} to "
               f"{defs.onnx_opset_version()}", hint="re-export it with opset_version=17")
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in r.consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        r.fail(f"netspec reads models with one input and one output; this one has "
               f"{len(inputs)} and {len(graph.output)}")
    r.shapes = _infer_shapes(model, r)
    x = r.shapes.get(inputs[0].name, ())
    if len(x) not in (2, 4) or any(not isinstance(d, int) or d < 1 for d in x[1:]):
        r.fail(f"the input `{inputs[0].name}` has shape {list(x)}: netspec needs N×C×H×W or "
               f"N×F with fixed sizes", hint="export with a fixed H and W")
    r.input_shape = _netspec_shape(x)
    r.input_name = inputs[0].name
    for r.index, node in enumerate(graph.node):
        r.node = node
        if node.domain not in ("", "ai.onnx"):
            r.fail(f"operator domain `{node.domain}` is not standard ONNX")
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            r.fail(f"netspec has no layer for the ONNX operator {node.op_type}",
                   hint="netspec imports: " + ", ".join(sorted(HANDLERS)))
        handler(r, node)
    r.node = None
    out = r.resolve(graph.output[0].name)
    if out == inputs[0].name:
        r.fail("the model has no layers")
    r.layers = _reachable(r.layers, out, inputs[0].name, r)
    if not r.all_names:
        _owned_by_containers(r.layers)
    return r.input_shape, r.layers, out


def _owned_by_containers(layers: list[Imported]) -> None:
    """An op torch named by a module that holds other layers was made in that module's
    forward (`F.interpolate` in DeepLab's `convs.4`): it belongs to the module, it is not
    the module. (Joins keep their module as `local`: the spec writer lifts them to it.)"""
    modules = {tuple(x.path[:n]) for x in layers for n in range(len(x.path) + 1)}
    for layer in layers:
        path, local = module_path(layer.node)
        if layer.node.startswith("/") and not layer.weights and local and \
                layer.kind not in ("add", "concat", "mul") and (*path, local) in modules:
            layer.path, layer.local = [*path, local], ""


def _reachable(layers: list[Imported], out: str, source: str, r: _Reader) -> list[Imported]:
    """The layers the output depends on, renaming the graph input to `input`."""
    by_out = {layer.output: layer for layer in layers}
    needed: set[str] = set()
    stack = [out]
    while stack:
        v = stack.pop()
        if v in needed or v not in by_out:
            continue
        needed.add(v)
        stack.extend(by_out[v].inputs)
    kept = [layer for layer in layers if layer.output in needed]
    for layer in kept:
        layer.inputs = ["input" if i == source else i for i in layer.inputs]
        for i in layer.inputs:
            if i != "input" and i not in by_out:
                r.fail(f"`{layer.where}` reads `{i}`, which no layer computes")
    return kept


def load_onnx(path: str | Path, weights: bool = True) -> onnx.ModelProto:
    """Read an .onnx file (its external weights too if `weights`); errors are NetspecErrors."""
    import onnx
    try:
        return onnx.load(str(path), load_external_data=weights)
    except Exception as err:  # noqa: BLE001 (protobuf and onnx raise many kinds)
        raise OnnxImportError(Diagnostic("error", f"cannot read ONNX model: {err}",
                                         str(path))) from None
