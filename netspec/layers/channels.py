"""Layers that work on the channels of each pixel: layer norm, layer scale, linear,
a channel chunk (one branch of `split`) and channel shuffle.

ConvNeXt applies its norm and its two linear layers to every pixel's channel
vector (torch permutes to channels last and back; netspec's volumes have no
layout, so the permutes are not layers here). ShuffleNetV2 splits the channels
into halves and shuffles them after the concatenation.
"""

from __future__ import annotations

from math import prod

from ..errors import Reporter, ShapeError
from .base import Layer, Pos, Shape, shape_str


class LayerNorm(Layer):
    """`layernorm [epsE]`: each pixel's C values normalised to mean 0, variance 1,
    then scaled and shifted per channel (2·C parameters), as torch's LayerNorm over C."""

    kind = "layernorm"
    DEFAULT_EPSILON = 1e-5   # torch.nn.LayerNorm's; ConvNeXt writes `eps1e-6`
    pointwise = True         # across channels, never across pixels
    saves = ("input",)       # and, per pixel, the mean and 1/std
    #: Per value: one add for the mean, subtract it, square and add for the variance,
    #: multiply by 1/std, scale, shift.
    FLOPS_PER_VALUE = 7

    def saved_extra_bytes(self) -> int:
        return 2 * 4 * prod(self.output_shape[:-1])

    def flops(self) -> int:
        return self.FLOPS_PER_VALUE * prod(self.output_shape)

    def explain(self) -> list[str]:
        c, n = self.output_shape[-1], prod(self.output_shape)
        return [f"out = in = {shape_str(self.output_shape)}, normalised over the {c} channels "
                f"of each pixel, ε = {self.epsilon:g}", f"params = 2·{c} = {self.params:,}",
                f"FLOPs = {self.FLOPS_PER_VALUE}·{n:,} = {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, epsilon: float | None = None) -> None:
        super().__init__(pos, text)
        self.epsilon = self.DEFAULT_EPSILON if epsilon is None else epsilon

    def check_options(self, rep: Reporter) -> None:
        if not self.epsilon > 0:
            rep.error(self.where("epsilon"), f"epsilon must be positive, not {self.epsilon:g}",
                      ShapeError, hint="e.g. `eps1e-6`; it keeps the division finite")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = self.output_shape = shape
        self.params = 2 * shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = (self.output_shape[-1],)
        return {"weight": c, "bias": c}

    def attrs(self) -> dict:
        return {"epsilon": self.epsilon}


class LayerScale(Layer):
    """`scale`: a learnable multiplier per channel (ConvNeXt's `layer_scale`, C parameters).

    Like torch's bare `nn.Parameter` of shape (C, 1, 1), its one array is keyed by
    the layer's own name (`features.1.0.layer_scale`), not `NAME.weight`.
    """

    kind = "scale"
    pointwise = True
    saves = ("input",)   # and its scale

    def flops(self) -> int:
        """One multiply per value."""
        return prod(self.output_shape)

    def explain(self) -> list[str]:
        return [f"out = in = {shape_str(self.output_shape)}, each channel times its own factor",
                f"params = {self.params:,}", f"FLOPs = {self.flops():,} (one multiply per value)"]

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep):
            return None
        self.output_shape = shape
        self.params = shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        return {"": (self.output_shape[-1], 1, 1)}


class Linear(Layer):
    """`linear N [nobias]`: an fc layer applied to each pixel's channel vector.

    Unlike `fc`, it does not flatten: H×W×C becomes H×W×N (a vector of C values
    becomes N). Weights (N, C) and bias (N,), as torch's nn.Linear.
    """

    kind = "linear"
    pointwise = True     # each pixel's channels, never its neighbours
    saves = ("input",)   # and its weight

    def flops(self) -> int:
        """Two per multiply-add, plus one add per output value for the bias."""
        return 2 * self.macs + (prod(self.output_shape) if self.bias else 0)

    def explain(self) -> list[str]:
        c, k = self.in_features, self.units
        pixels = prod(self.output_shape[:-1])
        params = f"({c} + 1)·{k}" if self.bias else f"{c}·{k}"
        return [f"out = {shape_str(self.output_shape)} ({k} per pixel)",
                f"params = {params} = {self.params:,}",
                f"MACs = {pixels:,}·{c}·{k} = {self.macs:,}",
                "FLOPs = 2·MACs" + (f" + {prod(self.output_shape):,} (bias)" if self.bias else "")
                + f" = {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, units: int, bias: bool = True) -> None:
        super().__init__(pos, text)
        self.units = units
        self.bias = bias
        self.in_features = 0

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "units", "unit count", self.units)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if self.units < 1:
            return None
        self.in_features = shape[-1]
        pixels = shape[0] * shape[1] if len(shape) == 3 else 1
        self.params = (self.in_features + self.bias) * self.units
        self.macs = pixels * self.in_features * self.units
        self.output_shape = (*shape[:-1], self.units)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        weight = {"weight": (self.units, self.in_features)}
        return weight | {"bias": (self.units,)} if self.bias else weight

    def attrs(self) -> dict:
        return {"units": self.units, "bias": self.bias}


class Chunk(Layer):
    """Branch `index` (from 0) of a `split { ... }`: the index-th of `count` equal
    runs of channels, which that branch reads (torch's `x.chunk(count, dim=1)`)."""

    kind = "chunk"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        a, b = self.channels
        return [f"channels {a}…{b - 1} of {self.input_shape[-1]}, "
                f"out = {shape_str(self.output_shape)}"]

    def __init__(self, pos: Pos, text: str, index: int, count: int) -> None:
        super().__init__(pos, text)
        self.index = index
        self.count = count

    @property
    def channels(self) -> tuple[int, int]:
        """The [start, stop) channels this chunk takes."""
        size = self.input_shape[-1] // self.count
        return self.index * size, (self.index + 1) * size

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        c = shape[-1]
        if c % self.count:
            if self.index == 0:   # one error per split, not one per branch
                rep.error(self.pos, f"`split` into {self.count} branches needs channels "
                                    f"divisible by {self.count}, but its input is "
                                    f"{shape_str(shape)}", ShapeError,
                          hint=f"give the layer before it a multiple of {self.count} channels")
            return None
        self.output_shape = (*shape[:-1], c // self.count)
        return self.output_shape

    def attrs(self) -> dict:
        return {"index": self.index, "count": self.count, "channels": list(self.channels)}


class Shuffle(Layer):
    """`shuffle G`: channel shuffle (ShuffleNet): the C channels, seen as G groups of
    C/G, are interleaved, so channel g·(C/G) + i moves to i·G + g."""

    kind = "shuffle"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    def __init__(self, pos: Pos, text: str, groups: int) -> None:
        super().__init__(pos, text)
        self.groups = groups

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "groups", "shuffle groups", self.groups)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.groups < 1:
            return None
        if shape[-1] % self.groups:
            rep.error(self.where("groups"), f"shuffle groups {self.groups} does not divide the "
                                            f"{shape[-1]} input channels", ShapeError,
                      hint="the channels are seen as groups × channels per group")
            return None
        self.output_shape = shape
        return shape

    def attrs(self) -> dict:
        return {"groups": self.groups}
