"""Fully connected layers and the vector-side helpers: flatten and dropout."""

from __future__ import annotations

from math import prod

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import Reading, TorchWriter

#: An fc layer over at least this many input values gets a warning (the course's
#: 1000×1000×3 image into 1000 units is 3 billion weights).
LARGE_FC_INPUTS = 1_000_000


class FC(Layer):
    """`fc N`: every input value connected to each of N units; flattens a volume."""

    kind = "fc"
    rule = "fc"
    keywords = ("fc",)
    usage = "fc N [ACTIVATION]"
    foreign = {"dense": "fc", "fully_connected": "fc"}
    saves = ("input",)   # and its weight

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size = r.words[0]
        units = r.size(size, (1,), "the unit count of `fc`")[0]
        return r.finish(cls(r.span(), r.text(), units), {}, {"units": size.pos})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        units = r.size(r.words[0], (1,), "the unit count of `fc`")[0]
        if t.vector:
            inputs = t.c_in
        else:
            t.flatten()
            inputs = t.fc_inputs()
        t.out(units)
        return f"nn.Linear({t.py(inputs)}, {t.py(units)})" if inputs is not None \
            else f"nn.LazyLinear({t.py(units)})"

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
    rule = "dropout"
    keywords = ("dropout",)
    usage = "dropout P, with 0 ≤ P < 1"
    foreign = {"drop": "dropout"}
    pointwise = True
    alias = True      # the identity at inference
    saves = ()        # in training, its mask: see saved_extra_bytes

    def __init__(self, pos: Pos, text: str, rate: float) -> None:
        super().__init__(pos, text)
        self.rate = rate

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        rate = r.words[0]
        layer = cls(r.span(), r.text(), rate.number)
        layer.options = {"rate": rate.pos}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return f"nn.Dropout({r.words[0].number!r})"

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
    rule = "flatten"
    keywords = ("flatten",)
    foreign = {"reshape": "flatten"}
    alias = True      # a view of its input (NCHW order)
    saves = ()

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        return [cls(r.span(), r.keyword.text)]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        if not t.vector:
            t.out(t.fc_inputs() or t.c_in)
        t.to_vector()
        return "nn.Flatten()"

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        self.output_shape = (prod(shape),)
        return self.output_shape

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        return [f"out = {shape_str(self.input_shape)} = {prod(self.input_shape):,} values"]
