"""Element-wise activations, each its own layer."""

from __future__ import annotations

from typing import ClassVar

from .base import Layer, Pos


class Activation(Layer):
    """`relu`, `relu6` (min(max(x, 0), 6)), `tanh`, `sigmoid`, `softmax` (over channels)."""

    FUNCTIONS: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh", "sigmoid", "softmax")

    def __init__(self, pos: Pos, text: str, function: str) -> None:
        super().__init__(pos, text)
        self.function = function

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.function
