"""Element-wise activations, each its own layer."""

from __future__ import annotations

from math import prod
from typing import Any, ClassVar

from ..errors import Reporter, ShapeError
from .base import Layer, Pos, shape_str


class Activation(Layer):
    """An element-wise function, one layer, no parameters.

    `relu`, `relu6` (min(max(x, 0), 6)), `tanh`, `sigmoid`, `softmax` (over the
    channels), `silu` (x·sigmoid(x), also called swish), `gelu` (exact:
    x·Φ(x) = x/2·(1 + erf(x/√2))), `hswish` (x·relu6(x + 3)/6) and `hsigmoid`
    (relu6(x + 3)/6) as torch's Hardswish and Hardsigmoid, and `leaky [SLOPE]`
    (x for x > 0, else SLOPE·x; SLOPE 0.01 by default, as torch's LeakyReLU).
    """

    FUNCTIONS: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh", "sigmoid", "softmax",
                                            "silu", "gelu", "hswish", "hsigmoid", "leaky")
    LEAKY_SLOPE: ClassVar[float] = 0.01
    #: Floating-point operations per value: one for a function evaluation (relu's max,
    #: tanh, sigmoid, erf), two for relu6's clamp, three for softmax (exp, sum, divide);
    #: silu = sigmoid and a multiply; gelu = scale, erf, add 1, multiply, halve;
    #: hsigmoid = add 3, clamp, divide; hswish = hsigmoid and a multiply; leaky = a
    #: comparison and a multiply.
    FLOPS_PER_VALUE: ClassVar[dict[str, int]] = {"relu": 1, "relu6": 2, "tanh": 1, "sigmoid": 1,
                                                 "softmax": 3, "silu": 2, "gelu": 5,
                                                 "hsigmoid": 4, "hswish": 5, "leaky": 2}
    #: Functions this project's runtimes (and torchvision's modules) apply in place.
    IN_PLACE: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh")
    #: What PyTorch's backward keeps: relu, tanh, sigmoid and softmax their result,
    #: relu6 (hardtanh) its input.
    #: silu, gelu, hardswish, hardsigmoid and leaky_relu keep their input.
    SAVES: ClassVar[dict[str, tuple[str, ...]]] = {"relu": ("output",), "relu6": ("input",),
                                                   "tanh": ("output",), "sigmoid": ("output",),
                                                   "softmax": ("output",), "silu": ("input",),
                                                   "gelu": ("input",), "hswish": ("input",),
                                                   "hsigmoid": ("input",), "leaky": ("input",)}
    pointwise = True   # softmax mixes channels, never pixels

    def __init__(self, pos: Pos, text: str, function: str, slope: float | None = None) -> None:
        super().__init__(pos, text)
        self.function = function
        self.slope = (self.LEAKY_SLOPE if slope is None else slope) \
            if function == "leaky" else None

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.function

    def check_options(self, rep: Reporter) -> None:
        if self.slope is not None and self.slope != self.slope:   # NaN is not a slope
            rep.error(self.where("slope"), "the slope of `leaky` must be a number", ShapeError)

    def attrs(self) -> dict:
        return {"slope": self.slope} if self.slope is not None else {}

    @property
    def in_place(self) -> bool:  # type: ignore[override]
        return self.function in self.IN_PLACE

    @property
    def saves(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._declared(self.SAVES, "SAVES")

    def flops(self) -> int:
        return self._declared(self.FLOPS_PER_VALUE, "FLOPS_PER_VALUE") * prod(self.output_shape)

    def _declared(self, table: dict[str, Any], name: str) -> Any:
        """This function's entry in `table`, or a refusal naming the table to extend."""
        if self.function not in table:
            raise NotImplementedError(f"`{self.function}` is not in Activation.{name}")
        return table[self.function]

    def explain(self) -> list[str]:
        n = prod(self.output_shape)
        per = self._declared(self.FLOPS_PER_VALUE, "FLOPS_PER_VALUE")
        return [f"out = in = {shape_str(self.output_shape)}", f"FLOPs = {per}·{n:,} = {self.flops():,}"]
