"""Element-wise activations: one class per function, each its own layer kind.

The self-gated ones, x·g(x) (silu, gelu, hswish) and hsigmoid, are in gating.py.
Each states its keyword, its FLOPs per value, what PyTorch's backward keeps for it,
its PyTorch module, its ONNX operators and its NumPy function. All are pointwise
(softmax mixes channels, never pixels) and have no weights. Any of them but softmax
may follow a conv, fc, linear or deconv as a shorthand: `conv 3x3 x16 relu`.

The NumPy functions overwrite the array they are given (`elementwise`), so the
model runs them in place, or fused into the step before them on each block of its
output while it is still in cache; they work through at most `temporaries`
temporaries of their argument's size, on pieces (numerics.elementwise.chunked).
"""

from __future__ import annotations

import math
from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.elementwise import Activation as Function
    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class Activation(Layer):
    """An element-wise function, one layer, no parameters."""

    joins_line = True
    rule = "activation"
    draw_colour = "#fde3c8"
    pointwise = True
    shorthand = True
    numpy_in_place = True
    #: Floating-point operations per value (netspec.analysis.cost's convention).
    flops_per_value: ClassVar[int] = 1
    #: Its PyTorch module.
    module: ClassVar[str] = ""
    #: Its ONNX operator, when it is one with no attributes.
    onnx_op: ClassVar[str] = ""

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        layer = cls(r.span(), r.text())
        layer.read_options(r)
        return [layer]

    def read_options(self, r: Reading) -> None:
        """Options after the keyword (only `leaky` has one)."""

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return cls.module

    def flops(self) -> int:
        return self.flops_per_value * prod(self.output_shape)

    def explain(self) -> list[str]:
        n = prod(self.output_shape)
        return [f"out = in = {shape_str(self.output_shape)}",
                f"FLOPs = {self.flops_per_value}·{n:,} = {self.flops():,}"]

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from ..numerics.elementwise import chunked
        return chunked(self.elementwise())

    def numpy_scratch(self, batch: int) -> int:
        from ..numerics.elementwise import CHUNK
        return self.temporaries * min(4 * CHUNK, 4 * batch * prod(self.output_shape))

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """Its function and torch's gradient of it (netspec.numerics.backward.activations,
        `KIND_forward` and `KIND_backward`), with `arguments()` after the input."""
        from ..numerics.backward import activations, steps
        forward, args = getattr(activations, f"{self.kind}_forward"), self.arguments()
        return steps.unary(lambda x: forward(x, *args),
                           getattr(activations, f"{self.kind}_backward"))

    def arguments(self) -> tuple[float, ...]:
        """Its function's arguments beyond the input (leaky's slope)."""
        return ()

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, self.onnx_op, [inputs[0]], self.name)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Its own operator (`onnx_op`), which has no attributes netspec must check."""
        if node.op_type != cls.onnx_op:
            return f"`{cls.keywords[0]}`"
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


def _clip_bounds(r: OnnxReader, node: onnx.NodeProto) -> list[float | None]:
    """A Clip's min and max (None where it has none)."""
    return [r.scalar(node.input[i], "a Clip bound") if len(node.input) > i and node.input[i]
            else None for i in (1, 2)]


def times_own(r: OnnxReader, node: onnx.NodeProto, gate: type[Activation]) -> str | None:
    """The input of x·gate(x) when the Mul `node` is that (gate's only reader), else None;
    the gate layer is dropped (the product is one layer)."""
    a, b = (r.resolve(i) for i in node.input)
    for u, v in ((a, b), (b, a)):
        f = r.producer(v)
        if f is not None and f.kind == gate.kind and f.inputs == [u] and r.uses(f.output) == 1:
            r.drop(f)
            return u
    return None


class Relu(Activation):
    """`relu`: max(x, 0)."""

    kind = "relu"
    keywords = ("relu",)
    module = "nn.ReLU()"
    onnx_op = "Relu"
    in_place = True
    saves = ("output",)

    def elementwise(self) -> Function:
        """A clip to [0, ∞): numpy's `maximum` against a scalar runs about 3× slower than
        `clip` (0.38 against 0.13 ns per float32 value here); NaN stays NaN."""
        import numpy as np
        inf = np.float32(np.inf)
        return lambda x: np.clip(x, 0, inf, out=x)

    onnx_ops = ("Relu", "Clip")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        if node.op_type == "Clip" and _clip_bounds(r, node) != [0.0, None]:
            return "`relu` (a Clip to [0, ∞))"
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


class Relu6(Activation):
    """`relu6`: min(max(x, 0), 6) (MobileNet); two FLOPs, a clamp."""

    kind = "relu6"
    keywords = ("relu6",)
    module = "nn.ReLU6()"
    flops_per_value = 2
    in_place = True
    saves = ("input",)   # torch's hardtanh keeps its input

    def elementwise(self) -> Function:
        import numpy as np
        return lambda x: np.clip(x, 0, 6, out=x)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        bounds = [g.constant(f"{self.name}.{k}", v) for k, v in (("min", 0), ("max", 6))]
        return g.node(self, "Clip", [inputs[0], *bounds], self.name)

    onnx_ops = ("Clip",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        if _clip_bounds(r, node) != [0.0, 6.0]:
            return "`relu6` (a Clip to [0, 6])"
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


class Tanh(Activation):
    """`tanh`."""

    kind = "tanh"
    keywords = ("tanh",)
    module = "nn.Tanh()"
    onnx_op = "Tanh"
    in_place = True
    saves = ("output",)

    def elementwise(self) -> Function:
        import numpy as np
        return lambda x: np.tanh(x, out=x)

    onnx_ops = ("Tanh",)


class Sigmoid(Activation):
    """`sigmoid`: 1/(1 + e^−x)."""

    kind = "sigmoid"
    keywords = ("sigmoid",)
    module = "nn.Sigmoid()"
    onnx_op = "Sigmoid"
    saves = ("output",)

    def elementwise(self) -> Function:
        return _sigmoid

    onnx_ops = ("Sigmoid",)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """0.5·tanh(0.5·x) + 0.5: no overflow for large |x|, unlike 1/(1 + e^−x)."""
    import numpy as np
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


class Softmax(Activation):
    """`softmax`: over the channels of each pixel (or a vector's values); exp, sum, divide."""

    kind = "softmax"
    draw_colour = "#f8c471"
    keywords = ("softmax",)
    module = "nn.Softmax(dim=1)"
    shorthand = True
    numpy_in_place = False
    flops_per_value = 3
    saves = ("output",)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np

        def softmax(x: np.ndarray) -> np.ndarray:
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            e /= e.sum(axis=-1, keepdims=True)
            return e
        return softmax

    def numpy_scratch(self, batch: int) -> int:
        """One temporary the size of its output."""
        return 4 * batch * prod(self.output_shape)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "Softmax", [inputs[0]], self.name, axis=1)

    onnx_ops = ("Softmax",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        rank = len(r.shape(node.input[0]))
        axis = r.attrs(node).get("axis", -1)
        if axis % rank != 1:
            r.fail(f"Softmax over axis {axis}: netspec's softmax runs over the channels "
                   f"(axis 1)")
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


class Leaky(Activation):
    """`leaky [SLOPE]`: x for x > 0, else SLOPE·x; SLOPE 0.01 unless written (torch's
    LeakyReLU; Darknet and YOLO use 0.1). A comparison and a multiply."""

    kind = "leaky"
    keywords = ("leaky",)
    usage = "leaky [SLOPE], e.g. `leaky 0.1` (default 0.01)"
    foreign = {"leakyrelu": "leaky", "leaky_relu": "leaky"}
    flops_per_value = 2
    numpy_in_place = False   # it writes a new array (see `numpy`)
    saves = ("input",)
    SLOPE: ClassVar[float] = 0.01

    def __init__(self, pos: Pos, text: str, slope: float | None = None) -> None:
        super().__init__(pos, text)
        self.slope = self.SLOPE if slope is None else slope

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return f"nn.LeakyReLU({r.words[0].number if r.words else cls.SLOPE!r})"

    def read_options(self, r: Reading) -> None:
        if r.words:
            self.slope = r.words[0].number
            self.options = {"slope": r.words[0].pos}

    def check_options(self, rep: Reporter) -> None:
        if self.slope != self.slope:   # NaN is not a slope
            rep.error(self.where("slope"), "the slope of `leaky` must be a number", ShapeError)

    def attrs(self) -> dict:
        return {"slope": self.slope}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """The larger of x and slope·x for slopes up to 1, the smaller beyond (a new array)."""
        import numpy as np
        s = np.float32(self.slope)
        pick = np.maximum if self.slope <= 1 else np.minimum

        def leaky(x: np.ndarray) -> np.ndarray:
            out = x * s
            return pick(x, out, out=out)
        return leaky

    def numpy_scratch(self, batch: int) -> int:
        return 0

    def arguments(self) -> tuple[float, ...]:
        return (self.slope,)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "LeakyRelu", [inputs[0]], self.name, alpha=self.slope)

    onnx_ops = ("LeakyRelu",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        slope = float(r.attrs(node).get("alpha", 0.01))
        words = [cls.keywords[0]] + ([] if abs(slope - cls.SLOPE) < 1e-9 else [r.short(slope)])
        r.emit(node, cls, words, [node.input[0]])
        return None


class Elu(Activation):
    """`elu [ALPHA]`: x for x > 0, else α·(e^x − 1); α 1 unless written (torch's ELU, as
    DPN's head). A comparison, an exp, a subtract and a multiply."""

    kind = "elu"
    keywords = ("elu",)
    usage = "elu [ALPHA], e.g. `elu 0.5` (default 1)"
    flops_per_value = 4
    temporaries = 1
    saves = ("input",)   # torch's elu_backward reads its input
    ALPHA: ClassVar[float] = 1.0

    def __init__(self, pos: Pos, text: str, alpha: float | None = None) -> None:
        super().__init__(pos, text)
        self.alpha = self.ALPHA if alpha is None else alpha

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return f"nn.ELU({r.words[0].number!r})" if r.words else "nn.ELU()"

    def read_options(self, r: Reading) -> None:
        if r.words:
            self.alpha = r.words[0].number
            self.options = {"alpha": r.words[0].pos}

    def check_options(self, rep: Reporter) -> None:
        if not math.isfinite(self.alpha):   # `elu 1e999` reads as infinity
            rep.error(self.where("alpha"), f"the α of `elu` must be a finite number, not "
                                           f"{self.alpha:g}", ShapeError,
                      hint="torch's default is 1 (`elu`)")

    def attrs(self) -> dict:
        return {"alpha": self.alpha}

    def explain(self) -> list[str]:
        return [*super().explain()[:1], f"y = x for x > 0, else {self.alpha:g}·(e^x − 1)",
                *super().explain()[1:]]

    def elementwise(self) -> Function:
        """max(x, 0) + α·expm1(min(x, 0)), in place through one temporary (torch computes
        expm1 too, so small negative x keep their digits)."""
        import numpy as np
        alpha, zero = np.float32(self.alpha), np.float32(0)

        def elu(x: np.ndarray) -> np.ndarray:
            negative = np.minimum(x, zero)
            np.expm1(negative, out=negative)
            negative *= alpha
            np.maximum(x, zero, out=x)
            x += negative
            return x
        return elu

    def arguments(self) -> tuple[float, ...]:
        return (self.alpha,)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "Elu", [inputs[0]], self.name, alpha=self.alpha)

    onnx_ops = ("Elu",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        alpha = float(r.attrs(node).get("alpha", 1.0))
        words = [cls.keywords[0]] + ([] if abs(alpha - cls.ALPHA) < 1e-9 else [r.short(alpha)])
        r.emit(node, cls, words, [node.input[0]])
        return None
