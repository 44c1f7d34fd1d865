"""Normalisation: batch norm (per channel) and local response norm (across channels)."""

from __future__ import annotations

import math
from typing import ClassVar

from ..errors import Reporter, ShapeError
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
        for option, value, least, strict in (("alpha", self.alpha, 0.0, False),
                                             ("beta", self.beta, 0.0, False),
                                             ("k", self.k, 0.0, True)):
            if not math.isfinite(value) or value < least or (strict and value == least):
                rep.error(self.where(option), f"lrn {option} must be a finite number "
                                              f"{'>' if strict else '≥'} 0, not {value:g}",
                          ShapeError, hint="the defaults are a0.0001 b0.75 k1"
                          if option != "k" else "k keeps the divisor above 0; the default is k1")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.size < 1:
            return None
        self.output_shape = shape
        return shape

    def attrs(self) -> dict:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
