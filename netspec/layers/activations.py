"""Element-wise activations, each its own layer."""

from __future__ import annotations

from math import prod
from typing import Any, ClassVar

from .base import Layer, Pos, shape_str


class Activation(Layer):
    """`relu`, `relu6` (min(max(x, 0), 6)), `tanh`, `sigmoid`, `softmax` (over channels)."""

    FUNCTIONS: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh", "sigmoid", "softmax")
    #: Floating-point operations per value: one for a function evaluation (relu's max,
    #: tanh, sigmoid), two for relu6's clamp, three for softmax (exp, sum, divide).
    FLOPS_PER_VALUE: ClassVar[dict[str, int]] = {"relu": 1, "relu6": 2, "tanh": 1, "sigmoid": 1,
                                                 "softmax": 3}
    #: Functions this project's runtimes (and torchvision's modules) apply in place.
    IN_PLACE: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh")
    #: What PyTorch's backward keeps: relu, tanh, sigmoid and softmax their result,
    #: relu6 (hardtanh) its input.
    SAVES: ClassVar[dict[str, tuple[str, ...]]] = {"relu": ("output",), "relu6": ("input",),
                                                   "tanh": ("output",), "sigmoid": ("output",),
                                                   "softmax": ("output",)}
    pointwise = True   # softmax mixes channels, never pixels

    def __init__(self, pos: Pos, text: str, function: str) -> None:
        super().__init__(pos, text)
        self.function = function

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.function

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
