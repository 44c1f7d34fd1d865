"""Element-wise activations: one class per function, each its own layer kind.

Each states its keyword, its FLOPs per value, whether this project's runtimes
apply it in place, and what PyTorch's backward keeps for it. All are pointwise
(softmax mixes channels, never pixels) and have no weights. Any of them but
softmax may follow a conv, fc, linear or deconv as a shorthand: `conv 3x3 x16 relu`.
"""

from __future__ import annotations

from math import prod
from typing import ClassVar

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, shape_str
from .statement import Reading, TorchWriter


class Activation(Layer):
    """An element-wise function, one layer, no parameters."""

    rule = "activation"
    pointwise = True
    shorthand = True
    #: Floating-point operations per value (netspec.analysis.cost's convention).
    flops_per_value: ClassVar[int] = 1
    #: Its PyTorch module.
    module: ClassVar[str] = ""

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return cls.module

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        layer = cls(r.span(), r.text())
        layer.read_options(r)
        return [layer]

    def read_options(self, r: Reading) -> None:
        """Options after the keyword (only `leaky` has one)."""

    def flops(self) -> int:
        return self.flops_per_value * prod(self.output_shape)

    def explain(self) -> list[str]:
        n = prod(self.output_shape)
        return [f"out = in = {shape_str(self.output_shape)}",
                f"FLOPs = {self.flops_per_value}·{n:,} = {self.flops():,}"]


class Relu(Activation):
    """`relu`: max(x, 0)."""

    kind = "relu"
    module = "nn.ReLU()"
    keywords = ("relu",)
    in_place = True
    saves = ("output",)


class Relu6(Activation):
    """`relu6`: min(max(x, 0), 6) (MobileNet); two FLOPs, a clamp."""

    kind = "relu6"
    module = "nn.ReLU6()"
    keywords = ("relu6",)
    flops_per_value = 2
    in_place = True
    saves = ("input",)   # torch's hardtanh keeps its input


class Tanh(Activation):
    """`tanh`."""

    kind = "tanh"
    module = "nn.Tanh()"
    keywords = ("tanh",)
    in_place = True
    saves = ("output",)


class Sigmoid(Activation):
    """`sigmoid`: 1/(1 + e^−x)."""

    kind = "sigmoid"
    module = "nn.Sigmoid()"
    keywords = ("sigmoid",)
    saves = ("output",)


class Softmax(Activation):
    """`softmax`: over the channels of each pixel (or a vector's values); exp, sum, divide."""

    kind = "softmax"
    module = "nn.Softmax(dim=1)"
    keywords = ("softmax",)
    flops_per_value = 3
    saves = ("output",)


class Silu(Activation):
    """`silu`: x·sigmoid(x), also called swish (EfficientNet); a sigmoid and a multiply."""

    kind = "silu"
    module = "nn.SiLU()"
    keywords = ("silu",)
    foreign = {"swish": "silu"}
    flops_per_value = 2
    saves = ("input",)


class Gelu(Activation):
    """`gelu`: the exact x·Φ(x) = x/2·(1 + erf(x/√2)) (torch's default, not the tanh form);
    scale, erf, add 1, multiply, halve."""

    kind = "gelu"
    module = "nn.GELU()"
    keywords = ("gelu",)
    flops_per_value = 5
    saves = ("input",)


class HSwish(Activation):
    """`hswish`: x·relu6(x + 3)/6, torch's Hardswish (MobileNetV3); hsigmoid and a multiply."""

    kind = "hswish"
    module = "nn.Hardswish()"
    keywords = ("hswish",)
    foreign = {"hardswish": "hswish", "hard_swish": "hswish"}
    flops_per_value = 5
    saves = ("input",)


class HSigmoid(Activation):
    """`hsigmoid`: relu6(x + 3)/6, torch's Hardsigmoid; add 3, clamp, divide."""

    kind = "hsigmoid"
    module = "nn.Hardsigmoid()"
    keywords = ("hsigmoid",)
    foreign = {"hardsigmoid": "hsigmoid", "hard_sigmoid": "hsigmoid"}
    flops_per_value = 4
    saves = ("input",)


class Leaky(Activation):
    """`leaky [SLOPE]`: x for x > 0, else SLOPE·x; SLOPE 0.01 unless written (torch's
    LeakyReLU; Darknet and YOLO use 0.1). A comparison and a multiply."""

    kind = "leaky"
    keywords = ("leaky",)
    usage = "leaky [SLOPE], e.g. `leaky 0.1` (default 0.01)"
    foreign = {"leakyrelu": "leaky", "leaky_relu": "leaky"}
    flops_per_value = 2
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
