"""Element-wise activations, each its own layer."""

from __future__ import annotations

from typing import ClassVar

from ..errors import Reporter, ShapeError
from .base import Layer, Pos


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
