"""Fully connected layers and the vector-side helpers: flatten and dropout."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Callable

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: An fc layer over at least this many input values gets a warning (the course's
#: 1000×1000×3 image into 1000 units is 3 billion weights).
LARGE_FC_INPUTS = 1_000_000


class FC(Layer):
    """`fc N`: every input value connected to each of N units; flattens a volume."""

    unsupported = {"rf": "its output is a vector: a receptive field is the input region an "
                         "output pixel sees, and an fc's output has no pixels"}
    kind = "fc"
    draw_colour = "#a8dca0"
    rule = "fc"
    keywords = ("fc",)
    usage = "fc N [ACTIVATION]"
    foreign = {"dense": "fc", "fully_connected": "fc"}
    saves = ("input",)   # and its weight

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size = r.words[0]
        units = r.size(size, (1,), "the unit count of `fc`")[0]
        return r.finish(cls(r.span(), r.text(), units), {}, {"units": size.pos})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        units = r.size(r.words[0], (1,), "the unit count of `fc`")[0]
        if t.vector:
            inputs = t.c_in
        else:
            t.flatten()
            inputs = t.fc_inputs()
        t.out(units)
        return f"nn.Linear({t.py(inputs)}, {t.py(units)})" if inputs is not None \
            else f"nn.LazyLinear({t.py(units)})"

    def __init__(self, pos: Pos, text: str, units: int) -> None:
        super().__init__(pos, text)
        self.units = units
        self.in_features = 0

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "units", "unit count", self.units)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if self.units < 1:
            return None
        n = prod(shape)
        self.in_features = n
        self.params = (n + 1) * self.units
        self.macs = n * self.units
        if n >= LARGE_FC_INPUTS:
            rep.warning(self.pos, "large-fc",
                        f"`{self.name}` connects all {n:,} input values ({shape_str(shape)}) to "
                        f"{self.units:,} units: {self.params:,} parameters",
                        hint="convolutions and pooling first share weights across the image "
                             "and shrink it before the fully connected layers")
        self.output_shape = (self.units,)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.units, self.in_features), "bias": (self.units,)}

    # ---- backends ------------------------------------------------------------------------
    fuses_activation = True
    folds_affine = True
    shares_features = True

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """x·weightᵀ + bias; a volume is flattened in NCHW order first (the weight's columns
        are). At batch 1 the threads share the output features."""
        import numpy as np

        from ..numerics.threads import chunks, each, width
        weight, bias = w["weight"], w["bias"]   # used as given: no copy of the largest arrays
        volume = len(self.input_shape) == 3

        def fc(x: np.ndarray, act: object = None) -> np.ndarray:
            if volume:
                x = x.transpose(0, 3, 1, 2)
            x = x.reshape(x.shape[0], -1)
            out = np.empty((x.shape[0], weight.shape[0]), np.float32)

            def features(f: slice) -> None:
                np.matmul(x, weight[f].T, out=out[:, f])
                out[:, f] += bias[f]
                if act is not None:
                    act(out[:, f])
            each(features, chunks(weight.shape[0], width()) if weight.shape[0] >= 256
                 else [slice(None)])
            return out
        return fc

    def numpy_scratch(self, batch: int) -> int:
        """A volume's NCHW copy, flattened."""
        return 4 * batch * prod(self.input_shape) if len(self.input_shape) == 3 else 0

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """x·weightᵀ + bias, a volume flattened in NCHW order, and its backward."""
        from ..numerics.backward import dense, steps
        weight, bias = w["weight"], w["bias"]
        return steps.weighted(lambda x: dense.fc_forward(x, weight, bias), dense.fc_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x = inputs[0]
        if len(self.input_shape) != 1:
            x = g.node(self, "Flatten", [x], f"{self.name}.flat", name=f"{self.name}.flatten",
                       axis=1)
            g.record(x, (self.in_features,))
        return g.node(self, "Gemm", [x, g.weight(self, "weight"), g.weight(self, "bias")],
                      self.name, transB=1)

    onnx_ops = ("Gemm", "MatMul", "Add")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Gemm (x·Wᵀ + b), MatMul by a constant matrix, and the Add of a constant after a
        MatMul, which is its bias."""
        unbiased = r.pending("fc_bias")   # fc layers from a MatMul, by output
        if node.op_type == "Add":
            x, y = node.input
            if r.const(x):
                x, y = y, x
            fc = unbiased.get(r.resolve(x))
            if fc is None or not r.const(y) or r.uses(fc.output) != 1 or \
                    prod(r.dims(y)) != fc.words[-1].value:
                return "the bias of a fully connected layer (a MatMul, then the Add of a constant)"
            fc.weights["bias"] = r.lazy(y, lambda b: b.reshape(-1))
            del unbiased[fc.output]
            r.alias(node.output[0], fc.output)
            return None
        if node.op_type == "MatMul":
            dims = r.dims(node.input[1]) if r.const(node.input[1]) else ()
            if len(dims) != 2:
                return "x·W by a constant matrix W (a fully connected layer)"
            layer = cls._emit(r, node, r.lazy(node.input[1], lambda w: w.T), dims[1], None)
            unbiased[layer.output] = layer
            return None
        a = r.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            r.fail("Gemm with transA, alpha or beta: netspec's fc computes x·Wᵀ + b")
        dims = r.dims(node.input[1])
        units = dims[0] if a.get("transB", 0) else dims[1]
        weight = r.lazy(node.input[1], None if a.get("transB", 0) else lambda w: w.T)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            if prod(r.dims(node.input[2])) != units:
                r.fail("a Gemm whose bias is not one number per unit")
            bias = r.lazy(node.input[2], lambda b: b.reshape(-1))
        cls._emit(r, node, weight, units, bias)
        return None

    @classmethod
    def _emit(cls, r: OnnxReader, node: onnx.NodeProto, weight: Callable[[], np.ndarray],
              units: int, bias: Callable[[], np.ndarray] | None) -> Any:
        x = node.input[0]
        flat = r.producer(x)
        if flat is not None and flat.kind == Flatten.kind and flat.where.startswith(
                f'node "{node.name}.flatten"') and r.uses(flat.output) == 1:
            r.drop(flat)   # netspec's own `fc` on a volume: Flatten + Gemm, one layer
            x = flat.inputs[0]
        elif len(r.shape(x)) != 2:
            r.fail("a fully connected layer over a volume: netspec's fc reads a flattened "
                   "vector here")

        def zeros() -> np.ndarray:
            import numpy as np
            return np.zeros(units, np.float32)
        return r.emit(node, cls, [cls.keywords[0], r.num("", units, None, "n")], [x],
                      {"weight": weight, "bias": bias or zeros})

    def flops(self) -> int:
        """Two per multiply-add, plus one add per unit for the bias."""
        return 2 * self.macs + self.units

    def explain(self) -> list[str]:
        n, k = self.in_features, self.units
        flat = (f"in = {shape_str(self.input_shape)} = {n:,} values (flattened), "
                if len(self.input_shape) > 1 else "")
        return [f"{flat}out = {k:,}", f"params = ({n:,} + 1)·{k:,} = {self.params:,}",
                f"MACs = {n:,}·{k:,} = {self.macs:,}",
                f"FLOPs = 2·MACs + {k:,} (bias) = {self.flops():,}"]

    def attrs(self) -> dict:
        return {"units": self.units}

    def picture_label(self) -> str | None:
        return f"fc {shape_str(self.output_shape)}"

    def filter_bank(self, weights: dict[str, np.ndarray]) -> np.ndarray | None:
        """Over a volume H×W×C, each unit's weights are one filter as large as the input
        (flattened in C-major order, as torch flattens N×C×H×W)."""
        if len(self.input_shape) != 3:
            return None
        h, w, c = self.input_shape
        return weights["weight"].reshape(self.units, c, h, w)


class Dropout(Layer):
    """`dropout P`: identity at inference, so no parameters and no shape change."""

    joins_line = True
    kind = "dropout"
    draw_colour = "#eeeeee"
    rule = "dropout"
    keywords = ("dropout",)
    usage = "dropout P, with 0 ≤ P < 1"
    foreign = {"drop": "dropout"}
    pointwise = True
    alias = True      # the identity at inference
    saves = ()        # in training, its mask: see saved_extra_bytes

    def __init__(self, pos: Pos, text: str, rate: float) -> None:
        super().__init__(pos, text)
        self.rate = rate

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        rate = r.words[0]
        layer = cls(r.span(), r.text(), rate.number)
        layer.options = {"rate": rate.pos}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return f"nn.Dropout({r.words[0].number!r})"

    def check_options(self, rep: Reporter) -> None:
        if not 0 <= self.rate < 1:
            rep.error(self.where("rate"), f"dropout rate must be in [0, 1), not {self.rate:g}",
                      ShapeError, hint="the rate is the fraction of units dropped, e.g. 0.5")

    def attrs(self) -> dict:
        return {"rate": self.rate}

    def aliases(self, training: bool) -> bool:
        return not training   # in training it writes a new, masked tensor

    def saved_extra_bytes(self) -> int:
        """In training PyTorch keeps the float32 mask, one value per input value."""
        return 4 * prod(self.input_shape)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        return None   # the identity at inference

    def explain(self) -> list[str]:
        p = self.rate
        return [f"out = in = {shape_str(self.output_shape)}: the identity at inference",
                f"in training each value is zeroed with probability {p:g} and the others "
                f"scaled by 1/(1 − {p:g}) = {1 / (1 - p):.4g}, so the expected sum is kept"]

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """In training, each value kept with probability 1 − rate (the mask drawn from
        `rng`) and scaled by 1/(1 − rate); otherwise the identity."""
        from ..numerics.backward import dense, steps
        return steps.unary(lambda x: dense.dropout_forward(x, self.rate, rng, training),
                           dense.dropout_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        ratio = g.constant(f"{self.name}.ratio", self.rate)
        return g.node(self, "Dropout", [inputs[0], ratio], self.name)   # inference: identity

    onnx_ops = ("Dropout",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        rate = r.scalar(node.input[1], "the dropout ratio") if len(node.input) > 1 and \
            node.input[1] else 0.5
        r.emit(node, cls, [cls.keywords[0], f"{rate:g}"], [node.input[0]])
        return None

    def flops(self) -> int:
        return 0


class Flatten(Layer):
    """`flatten`: H×W×C becomes a vector of H·W·C values in C-major (NCHW) order."""

    unsupported = {"rf": "its output is a vector: a receptive field is the input region an "
                         "output pixel sees, and a flattened vector has no pixels"}
    joins_line = True
    kind = "flatten"
    draw_colour = "#d9d2e9"
    rule = "flatten"
    keywords = ("flatten",)
    foreign = {"reshape": "flatten"}
    alias = True      # a view of its input (NCHW order)
    saves = ()

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        return [cls(r.span(), r.keyword.text)]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        if not t.vector:
            t.out(t.fc_inputs() or t.c_in)
        t.to_vector()
        return "nn.Flatten()"

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        self.output_shape = (prod(shape),)
        return self.output_shape

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        return [f"out = {shape_str(self.input_shape)} = {prod(self.input_shape):,} values"]

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        if len(self.input_shape) == 1:
            return None
        return lambda x: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)

    def numpy_alias(self) -> bool:
        """The NumPy model copies a volume to NCHW order."""
        return len(self.input_shape) == 1

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import dense, steps
        return steps.unary(dense.flatten_forward, dense.flatten_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "Flatten", [inputs[0]], self.name, axis=1)

    onnx_ops = ("Flatten", "Reshape")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Flatten (axis 1), or a Reshape from N×C×H×W to N×(C·H·W)."""
        if node.op_type == "Flatten":
            if r.attrs(node).get("axis", 1) != 1:
                r.fail("Flatten keeps the batch axis only with axis=1")
        else:
            x, out = r.shape(node.input[0]), r.shape(node.output[0])
            if not (len(out) == 2 and len(x) >= 2 and out[1] == prod(x[1:])) or \
                    not r.computed(node.input[0]):
                return "N×C×H×W → N×(C·H·W) (`flatten`) of a value a layer computes"
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None
