"""Element-wise activations: one class per function, each its own layer kind.

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


def _times_own(r: OnnxReader, node: onnx.NodeProto, gate: type[Activation]) -> str | None:
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


class Silu(Activation):
    """`silu`: x·sigmoid(x), also called swish (EfficientNet); a sigmoid and a multiply."""

    kind = "silu"
    keywords = ("silu",)
    foreign = {"swish": "silu"}
    module = "nn.SiLU()"
    flops_per_value = 2
    temporaries = 1
    saves = ("input",)

    def elementwise(self) -> Function:
        """x·sigmoid(x) as h·(1 + tanh(h)), h = x/2 (no overflow; four passes)."""
        import numpy as np
        half, one = np.float32(0.5), np.float32(1)

        def silu(x: np.ndarray) -> np.ndarray:
            x *= half
            s = np.tanh(x)
            s += one
            x *= s
            return x
        return silu

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x = inputs[0]
        gate = g.node(self, "Sigmoid", [x], f"{self.name}.sigmoid", name=f"{self.name}.sigmoid")
        g.record(gate, self.output_shape)
        return g.node(self, "Mul", [x, gate], self.name)

    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        x = _times_own(r, node, Sigmoid)
        if x is None:
            return "`silu` (x·sigmoid(x))"
        r.emit(node, cls, [cls.keywords[0]], [x])
        return None


#: Abramowitz and Stegun 7.1.26: erf(a) = 1 − t·P(t)·e^(−a²), t = 1/(1 + p·a), a ≥ 0,
#: with absolute error below 1.5e-7 (float32's resolution near 1 is 6e-8).
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


class Gelu(Activation):
    """`gelu`: the exact x·Φ(x) = x/2·(1 + erf(x/√2)) (torch's default, not the tanh form);
    scale, erf, add 1, multiply, halve."""

    kind = "gelu"
    keywords = ("gelu",)
    module = "nn.GELU()"
    flops_per_value = 5
    temporaries = 3
    saves = ("input",)

    def elementwise(self) -> Function:
        return _gelu

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Gelu from opset 20; before, its definition x·(1 + erf(x/√2))/2 in Div, Erf, Add,
        Mul."""
        x = inputs[0]
        if g.opset >= 20:
            return g.node(self, "Gelu", [x], self.name, approximate="none")
        n = self.name
        steps = (("Div", "scaled", g.constant(f"{n}.sqrt2", 2 ** 0.5)), ("Erf", "erf", None),
                 ("Add", "plus1", g.constant(f"{n}.one", 1)), ("Mul", "times_x", x),
                 ("Mul", None, g.constant(f"{n}.half", 0.5)))
        value = x
        for op, suffix, operand in steps:
            out = f"{n}.{suffix}" if suffix else n
            value = g.node(self, op, [value] + ([operand] if operand else []), out, name=out)
            if suffix:
                g.record(value, self.output_shape)
        return value

    onnx_ops = ("Gelu", "Div", "Erf", "Add", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Gelu (exact), or its definition x·(1 + erf(x/√2))·0.5 in Div, Erf, Add, Mul, Mul:
        each step remembered by the value it made (`pending`) until the last."""
        if node.op_type == "Gelu":
            if r.attrs(node).get("approximate", "none") != "none":
                r.fail("Gelu with the tanh approximation: netspec's gelu is the exact one (erf)")
            r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
            return None
        steps = r.pending("gelu")   # value → (step, x)
        why = "`gelu` (its definition x·(1 + erf(x/√2))·0.5)"
        ins = [r.resolve(i) for i in node.input]
        const = [i for i in ins if r.const(i)]
        c = r.scalar(const[0], "a constant") if len(const) == 1 and \
            r.dims(const[0]) in ((), (1,)) else None
        flowing = [i for i in ins if not r.const(i)]
        step = steps.get(flowing[0]) if flowing else None
        if node.op_type == "Div" and c is not None and ins[0] == flowing[0] and \
                abs(c - 2 ** 0.5) < 1e-5:
            steps[node.output[0]] = ("div", flowing[0])
        elif node.op_type == "Erf" and step is not None and step[0] == "div":
            steps[node.output[0]] = ("erf", step[1])
        elif node.op_type == "Add" and step is not None and step[0] == "erf" and \
                c is not None and abs(c - 1) < 1e-7:
            steps[node.output[0]] = ("plus1", step[1])
        elif node.op_type == "Mul" and step is not None and step[0] == "times_x" and \
                c is not None and abs(c - 0.5) < 1e-7:
            r.emit(node, cls, [cls.keywords[0]], [step[1]])
        elif node.op_type == "Mul" and len(flowing) == 2 and any(
                steps.get(v, ("",))[0] == "plus1" and steps[v][1] == u
                for u, v in (flowing, flowing[::-1])):
            steps[node.output[0]] = ("times_x", next(
                u for u, v in (flowing, flowing[::-1]) if steps.get(v, ("",))[0] == "plus1"))
        else:
            return why
        return None


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)): torch's `gelu` without the tanh approximation.

    With a = |x|/√2 and q = t·P(t)·e^(−a²)/2, x·Φ(x) is x·(1 − q) for x ≥ 0 and
    x·q below: max(x, 0) − |x|·q. Three temporaries, twenty passes.
    """
    import numpy as np
    a = np.abs(x)
    e = a * a                              # |x|·e^(−x²/2)
    e *= np.float32(-0.5)
    np.exp(e, out=e)
    e *= a
    t = a * np.float32(_ERF_P / np.sqrt(2))   # t = 1/(1 + p·|x|/√2)
    t += np.float32(1)
    np.reciprocal(t, out=t)
    q = np.multiply(t, np.float32(_ERF_A[0] / 2), out=a)   # Horner, halved: ((a0·t + a1)·t + …)·t/2
    for c in _ERF_A[1:]:
        q += np.float32(c / 2)
        q *= t
    q *= e
    np.clip(x, 0, np.float32(np.inf), out=x)
    x -= q
    return x


class HSigmoid(Activation):
    """`hsigmoid`: relu6(x + 3)/6, torch's Hardsigmoid; add 3, clamp, divide."""

    kind = "hsigmoid"
    keywords = ("hsigmoid",)
    foreign = {"hardsigmoid": "hsigmoid", "hard_sigmoid": "hsigmoid"}
    module = "nn.Hardsigmoid()"
    flops_per_value = 4
    saves = ("input",)

    def elementwise(self) -> Function:
        import numpy as np

        def hsigmoid(x: np.ndarray) -> np.ndarray:
            x += np.float32(3)
            np.clip(x, 0, 6, out=x)
            x /= np.float32(6)
            return x
        return hsigmoid

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "HardSigmoid", [inputs[0]], self.name, alpha=1 / 6, beta=0.5)

    onnx_ops = ("HardSigmoid",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        a = r.attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
            r.fail(f"HardSigmoid with alpha {alpha:g}, beta {beta:g}: netspec's hsigmoid is "
                   f"torch's, relu6(x + 3)/6 (alpha 1/6, beta 0.5)")
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


class HSwish(Activation):
    """`hswish`: x·relu6(x + 3)/6, torch's Hardswish (MobileNetV3); hsigmoid and a multiply."""

    kind = "hswish"
    keywords = ("hswish",)
    foreign = {"hardswish": "hswish", "hard_swish": "hswish"}
    module = "nn.Hardswish()"
    flops_per_value = 5
    temporaries = 1
    saves = ("input",)

    def elementwise(self) -> Function:
        import numpy as np

        def hswish(x: np.ndarray) -> np.ndarray:
            s = x + np.float32(3)
            np.clip(s, 0, 6, out=s)
            s /= np.float32(6)
            x *= s
            return x
        return hswish

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """HardSwish from opset 14; in opset 13, x·HardSigmoid(x)."""
        x = inputs[0]
        if g.opset >= 14:
            return g.node(self, "HardSwish", [x], self.name)
        gate = g.node(self, "HardSigmoid", [x], f"{self.name}.hsigmoid",
                      name=f"{self.name}.hsigmoid", alpha=1 / 6, beta=0.5)
        g.record(gate, self.output_shape)
        return g.node(self, "Mul", [x, gate], self.name)

    onnx_ops = ("HardSwish", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        x = node.input[0] if node.op_type == "HardSwish" else _times_own(r, node, HSigmoid)
        if x is None:
            return "`hswish` (x·hsigmoid(x))"
        r.emit(node, cls, [cls.keywords[0]], [x])
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
