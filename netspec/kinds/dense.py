"""Fully connected layers and the vector-side helpers: flatten and dropout."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np

    from ..numerics.windows import Step

#: An fc layer over at least this many input values gets a warning (the course's
#: 1000×1000×3 image into 1000 units is 3 billion weights).
LARGE_FC_INPUTS = 1_000_000


class FC(Layer):
    """`fc N`: every input value connected to each of N units; flattens a volume."""

    kind = "fc"
    draw_colour = "#a8dca0"
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

    # ---- backends ------------------------------------------------------------------------
    fuses_activation = True
    folds_affine = True
    shares_features = True

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """x·weightᵀ + bias; a volume is flattened in NCHW order first (the weight's columns
        are). At batch 1 the threads share the output features."""
        import numpy as np

        from ..numerics.threads import chunks, each, width
        weight, bias = w["weight"], w["bias"]   # used as given: no copy of the largest arrays
        volume = len(self.input_shape) == 3

        def fc(x: np.ndarray, act: object = None) -> np.ndarray:
            if volume:
                x = x.transpose(0, 3, 1, 2)
            x = x.reshape(x.shape[0], -1)
            out = np.empty((x.shape[0], weight.shape[0]), np.float32)

            def features(f: slice) -> None:
                np.matmul(x, weight[f].T, out=out[:, f])
                out[:, f] += bias[f]
                if act is not None:
                    act(out[:, f])
            each(features, chunks(weight.shape[0], width()) if weight.shape[0] >= 256
                 else [slice(None)])
            return out
        return fc

    def numpy_scratch(self, batch: int) -> int:
        """A volume's NCHW copy, flattened."""
        return 4 * batch * prod(self.input_shape) if len(self.input_shape) == 3 else 0

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x = inputs[0]
        if len(self.input_shape) != 1:
            x = g.node(self, "Flatten", [x], f"{self.name}.flat", name=f"{self.name}.flatten",
                       axis=1)
            g.record(x, (self.in_features,))
        return g.node(self, "Gemm", [x, g.weight(self, "weight"), g.weight(self, "bias")],
                      self.name, transB=1)

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

    def picture_label(self) -> str | None:
        return f"fc {shape_str(self.output_shape)}"

    def filter_bank(self, weights: dict[str, np.ndarray]) -> np.ndarray | None:
        """Over a volume H×W×C, each unit's weights are one filter as large as the input
        (flattened in C-major order, as torch flattens N×C×H×W)."""
        if len(self.input_shape) != 3:
            return None
        h, w, c = self.input_shape
        return weights["weight"].reshape(self.units, c, h, w)


class Dropout(Layer):
    """`dropout P`: identity at inference, so no parameters and no shape change."""

    kind = "dropout"
    draw_colour = "#eeeeee"
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

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        return None   # the identity at inference

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        ratio = g.constant(f"{self.name}.ratio", self.rate)
        return g.node(self, "Dropout", [inputs[0], ratio], self.name)   # inference: identity

    def flops(self) -> int:
        return 0


class Flatten(Layer):
    """`flatten`: H×W×C becomes a vector of H·W·C values in C-major (NCHW) order."""

    kind = "flatten"
    draw_colour = "#d9d2e9"
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

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        if len(self.input_shape) == 1:
            return None
        return lambda x: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)

    def numpy_alias(self) -> bool:
        """The NumPy model copies a volume to NCHW order."""
        return len(self.input_shape) == 1

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "Flatten", [inputs[0]], self.name, axis=1)
