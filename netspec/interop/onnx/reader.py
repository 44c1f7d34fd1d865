"""The walk over one ONNX graph: its values, constants and shapes, and the layers read.

`Reader` is what every kind's `from_onnx` is given (kinds/statement.py's
`OnnxReader`): a kind reads the nodes of its operators into `Imported` layers
through `emit`, or records a step of a pattern of several nodes (`pending`), or
declines. A layer read from the graph keeps its statement as words (strings and
`Num`s, numbers the spec writer may turn into block parameters), the values it
reads and writes, its module path from the node's name, and its arrays, read only
when the weights are asked for.
"""

from __future__ import annotations

import re
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from ...kinds.arith import resolve_padding, window_output_size
from ...source.diagnostics import Diagnostic, NetspecError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ...kinds import Layer

_NAME = re.compile(r"[A-Za-z_]\w*(-\w+)*|\d+")   # a name part (`block1-0`) or a position


class OnnxImportError(NetspecError):
    """An ONNX model netspec cannot express (or read); `partial` lists the layers before it."""

    def __init__(self, diagnostic: Diagnostic | str, partial: list[Imported] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(diagnostic)
        self.partial = partial or []
        self.input_shape = input_shape


class Num:
    """A number in a statement: `prefix` + value (`s2`, `x64`), left out when it is `default`.

    `key` names the block parameter the number becomes when the spec writer finds
    the same statement with different numbers (`x$c`, `s$s`).
    """

    __slots__ = ("prefix", "value", "default", "key")

    def __init__(self, prefix: str, value: int, default: int | None = None,
                 key: str = "n") -> None:
        self.prefix, self.value, self.default, self.key = prefix, value, default, key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Num) and (self.prefix, self.value, self.default, self.key) \
            == (other.prefix, other.value, other.default, other.key)

    __hash__ = None   # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Num({self.prefix!r}, {self.value}, {self.default}, {self.key!r})"

    def text(self) -> str:
        return f"{self.prefix}{self.value}"


class Imported:
    """One netspec layer recovered from the graph."""

    def __init__(self, kind: str, words: list[Any], inputs: list[str], output: str,
                 path: list[str], local: str, weights: dict[str, Callable[[], np.ndarray]],
                 where: str, shape: tuple[int, ...], in_shape: tuple[int, ...], exact: bool,
                 node: str) -> None:
        self.kind = kind                # `conv`, `relu`, `add`, `concat`...
        self.words = words              # the statement: strings and Nums
        self.inputs = inputs            # value names it reads
        self.output = output            # the value it writes
        self.path = path                # the module path that owns it (`layer1`, `0`)
        self.local = local              # its own name under that path (`conv1`), or ""
        self.weights = weights          # its arrays by suffix, read on demand
        self.where = where              # `node "/layer1/Conv" (Conv, node 3 of 60)`
        self.shape = shape              # output, netspec order (H, W, C) or (N,)
        self.in_shape = in_shape        # what it reads (the first input)
        self.exact = exact              # named by netspec: `path` is the scope it was written in
        self.node = node                # the ONNX node's name
        self.chunk: tuple[int, int] | None = None   # a `chunk`: (which run, of how many)
        self.runs: tuple[int, ...] = ()   # ... and every run's size, where they differ
        self.text = ""                  # netspec's statement (`residual`, `add`), from doc_string
        #: a Resize to the H×W of this value (`to branch` where it is the branch's input)
        self.size_of = ""

    def __repr__(self) -> str:
        return f"Imported({self.kind!r}, {self.statement()!r}, {self.name!r})"

    @property
    def required(self) -> bool:
        """Layers with weights must keep their names, so the weights load by name."""
        return bool(self.weights)

    def statement(self) -> str:
        """The statement as netspec reads it, defaults left out."""
        return " ".join(w.text() if isinstance(w, Num) else w for w in self.words
                        if not isinstance(w, Num) or w.value != w.default)

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


def netspec_shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """An ONNX N×C×H×W (or N×F) shape in netspec's order, H×W×C (or F), batch dropped."""
    dims = tuple(shape[1:])
    return (dims[1], dims[2], dims[0]) if len(dims) == 3 else dims


class Reader:
    """The walk over one graph: values, constants, shapes and the layers made so far."""

    def __init__(self, model: onnx.ModelProto, filename: str | None) -> None:
        self.model = model
        self.filename = filename
        graph = model.graph
        self.consts: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.values: dict[str, Any] = {}        # small constant values (numpy), by name
        self.aliases: dict[str, str] = {}       # value → the value it equals
        self.layers: list[Imported] = []
        self.producers: dict[str, Imported] = {}
        self.readers: dict[str, int] = {}
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self.patterns: dict[str, dict[str, Any]] = {}
        self.index = 0
        self.sizes: dict[str, list[Any]] = {}   # values of shape computations (`x.size(0)`)
        #: where each of those sizes comes from: (value, axis) of a Shape, None for a constant
        self.origins: dict[str, list[tuple[str, int] | None]] = {}
        self.input_name = ""
        self.node: onnx.NodeProto | None = None
        self.input_shape: tuple[int, ...] | None = None
        #: a model netspec exported names every layer; keep even the names of those
        #: without weights (a torch export's `relu_1` is better replaced by netspec's own)
        self.all_names = model.producer_name == "netspec"
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          0)
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.readers[name] = self.readers.get(name, 0) + 1
                self._consumers.setdefault(name, []).append(node)

    # ---- errors ------------------------------------------------------------
    def where(self, node: onnx.NodeProto) -> str:
        name = f'"{node.name}"' if node.name else "(unnamed)"
        return f"node {name} ({node.op_type}, node {self.index + 1} of {len(self.model.graph.node)})"

    def fail(self, message: str, hint: str | None = None) -> NoReturn:
        where = self.where(self.node) + ": " if self.node is not None else ""
        raise OnnxImportError(Diagnostic("error", where + message, self.filename, hint=hint),
                              self.layers, self.input_shape)

    # ---- values --------------------------------------------------------------
    def attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        from onnx import helper
        out = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            out[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return out

    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def alias(self, name: str, value: str) -> None:
        self.aliases[name] = self.resolve(value)

    def const(self, name: str) -> bool:
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
        self.dims(name)

        def read() -> np.ndarray:
            a = (transform or (lambda v: v))(self.array(name))
            return np.ascontiguousarray(a, dtype=np.float32).reshape(a.shape)   # () stays ()
        return read

    def dims(self, name: str) -> tuple[int, ...]:
        name = self.resolve(name)
        if name in self.values:
            return tuple(self.values[name].shape)
        if name not in self.consts:
            self.fail(f"`{name}` must be a constant (an initializer) for netspec to read it")
        return tuple(self.consts[name].dims)

    def scalar(self, name: str, what: str) -> float:
        if prod(self.dims(name)) != 1:
            self.fail(f"{what} must be a single number, not an array of shape "
                      f"{list(self.dims(name))}")
        return float(self.array(name).reshape(()))

    def shape(self, name: str) -> tuple[Any, ...]:
        """The value's ONNX shape (N, C, H, W) with "N" for the batch."""
        name = self.resolve(name)
        if name not in self.shapes:
            self.fail(f"the shape of `{name}` is unknown (ONNX shape inference could not tell)")
        return self.shapes[name]

    def layer_input(self, name: str) -> str:
        name = self.resolve(name)
        if self.const(name):
            self.fail(f"input `{name}` is a constant where netspec expects the flowing value")
        return name

    def producer(self, value: str) -> Imported | None:
        return self.producers.get(self.resolve(value))

    def uses(self, value: str) -> int:
        return self.readers.get(value, 0)

    def computed(self, value: str) -> bool:
        value = self.resolve(value)
        return value == self.input_name or value in self.producers

    def consumers(self, value: str) -> list[onnx.NodeProto]:
        return self._consumers.get(value, [])

    def pending(self, pattern: str) -> dict[str, Any]:
        return self.patterns.setdefault(pattern, {})

    def statement(self, node: onnx.NodeProto) -> str:
        return node.doc_string.split(": ", 1)[-1] if self.all_names else ""

    def size_of(self, name: str) -> str | None:
        name = self.resolve(name)
        hw = (self.origins.get(name) or [])[-2:]
        if len(hw) == 2 and None not in hw and hw[0][0] == hw[1][0] and \
                (hw[0][1], hw[1][1]) == (2, 3):
            return hw[0][0]
        return None

    # ---- numbers and words ------------------------------------------------------
    def num(self, prefix: str, value: int, default: int | None = None, key: str = "n") -> Num:
        return Num(prefix, value, default, key)

    def square(self, values: list[int], what: str) -> int:
        if len(set(values)) != 1:
            self.fail(f"{what} {values} differs between height and width",
                      hint="netspec writes one number for both axes")
        return values[0]

    @staticmethod
    def short(value: float) -> str:
        plain = f"{value:.7g}"
        mantissa, exponent = f"{value:.6e}".split("e")
        sci = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return sci if len(sci) < len(plain) else plain

    def padding(self, attrs: dict[str, Any], x: str, kernel: list[int], strides: list[int],
                dilation: int, pool: bool, out: str) -> list[Any]:
        """Two paddings give the same windows when they pad the same before the input and
        give the same number of outputs (what lies past the last window is never read, and
        pooling ignores padding), so the candidates `pN`, `pN ceil`, `same` and `valid` are
        compared on that: netspec itself writes `pool … ceil` as the padding that floor
        rounding needs."""
        n = self.shape(x)[2:]
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            before = []
            for size, f, s in zip(n, kernel, strides):
                total = max((-(-size // s) - 1) * s + dilation * (f - 1) + 1 - size, 0)
                before.append(total - total // 2 if auto == "SAME_LOWER" else total // 2)
        elif auto == "VALID":
            before = [0, 0]
        else:
            before = list(attrs.get("pads", [0, 0, 0, 0]))[:2]
        want = [int(o) for o in self.shape(out)[2:]]
        ceil = bool(attrs.get("ceil_mode", 0))
        candidates: list[tuple[Any, bool]] = [(Num("p", before[0], 0, "p"), ceil)] \
            if before[0] == before[1] else []
        if pool and candidates and not ceil:
            candidates.append((candidates[0][0], True))
        candidates += [("same", False), ("valid", False)]
        for cand, rounding_up in candidates:
            padding = cand.value if isinstance(cand, Num) else cand
            got = []
            for size, f, s in zip(n, kernel, strides):
                pads = resolve_padding(padding, size, f, s, dilation)
                got.append((pads[0], window_output_size(size, f, pads, s, dilation, rounding_up)))
            if got == list(zip(before, want)):
                return [cand, *(["ceil"] if rounding_up else [])]
        self.fail(f"padding {attrs.get('pads', auto)} is not expressible as netspec's `pN`, "
                  f"`same` or `valid` for this input", hint="netspec pads each axis "
                  "symmetrically, or as `same` (the odd pixel at the end)")

    # ---- making layers ------------------------------------------------------------
    def emit(self, node: onnx.NodeProto, kind: type[Layer] | str, words: list[Any],
             inputs: list[str], weights: dict[str, Callable[[], np.ndarray]] | None = None,
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
        if not self.all_names and not weights and not local.isdigit():
            local = ""
        kind_name = kind if isinstance(kind, str) else kind.kind
        layer = Imported(kind_name, words, [self.layer_input(i) for i in inputs], out, path,
                         local, weights or {}, self.where(node),
                         netspec_shape(self.shape(out)), netspec_shape(self.shape(inputs[0])),
                         self.all_names, node.name)
        layer.text = self.statement(node)
        self.layers.append(layer)
        self.producers[out] = layer
        return layer

    def drop(self, layer: Imported) -> None:
        self.layers.remove(layer)

    @property
    def base_dir(self) -> str:
        return str(Path(self.filename).parent) if self.filename else ""
