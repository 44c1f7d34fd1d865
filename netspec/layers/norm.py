"""Normalisation: batch norm (per channel) and local response norm (across channels)."""

from __future__ import annotations

from typing import ClassVar

from ..errors import Reporter
from .base import Layer, Pos, Shape


class BatchNorm(Layer):
    """`bn`: per-channel scale and shift (2·C trainable), plus running statistics."""

    kind = "bn"
    EPSILON: ClassVar[float] = 1e-5

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = self.output_shape = shape
        self.params = 2 * shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = (self.output_shape[-1],)
        return {"weight": c, "bias": c, "running_mean": c, "running_var": c}


class LRN(Layer):
    """`lrn N`: x / (k + α/N · Σ x²)^β over N neighbouring channels (AlexNet, 2012)."""

    kind = "lrn"

    def __init__(self, pos: Pos, text: str, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__(pos, text)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "size", "lrn size", self.size)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.size < 1:
            return None
        self.output_shape = shape
        return shape

    def attrs(self) -> dict:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
