"""Fully connected layers and the vector-side helpers: flatten and dropout."""

from __future__ import annotations

from math import prod

from ..errors import Reporter, ShapeError
from .base import Layer, Pos, Shape, shape_str

#: An fc layer over at least this many input values gets a warning (the course's
#: 1000×1000×3 image into 1000 units is 3 billion weights).
LARGE_FC_INPUTS = 1_000_000


class FC(Layer):
    """`fc N`: every input value connected to each of N units; flattens a volume."""

    kind = "fc"
    saves = ("input",)   # and its weight

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


class Dropout(Layer):
    """`dropout P`: identity at inference, so no parameters and no shape change."""

    kind = "dropout"
    pointwise = True
    alias = True      # the identity at inference
    saves = ()        # in training, its mask: see saved_extra_bytes

    def __init__(self, pos: Pos, text: str, rate: float) -> None:
        super().__init__(pos, text)
        self.rate = rate

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

    def flops(self) -> int:
        return 0


class Flatten(Layer):
    """`flatten`: H×W×C becomes a vector of H·W·C values in C-major (NCHW) order."""

    kind = "flatten"
    alias = True      # a view of its input (NCHW order)
    saves = ()

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        self.output_shape = (prod(shape),)
        return self.output_shape

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        return [f"out = {shape_str(self.input_shape)} = {prod(self.input_shape):,} values"]
