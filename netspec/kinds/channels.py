"""Layers that work on the channels of each pixel: layer norm, layer scale, linear,
a channel chunk (one branch of `split`) and channel shuffle.

ConvNeXt applies its norm and its two linear layers to every pixel's channel
vector (torch permutes to channels last and back; netspec's volumes have no
layout, so the permutes are not layers here). ShuffleNetV2 splits the channels
into halves and shuffles them after the concatenation.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from ..syntax.tree import LayerStmt
from .statement import OnnxGraph, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The modules the generated PyTorch code defines for itself: torch's own, applied to each
#: pixel's channels (channels last).
LAYER_NORM_2D = '''class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each pixel (as torchvision's ConvNeXt LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)'''
PIXEL_LINEAR = '''class PixelLinear(nn.Linear):
    """A linear layer applied to the channels of each pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x.permute(0, 2, 3, 1), self.weight, self.bias)
        return y.permute(0, 3, 1, 2)'''


class LayerNorm(Layer):
    """`layernorm [epsE]`: each pixel's C values normalised to mean 0, variance 1,
    then scaled and shifted per channel (2·C parameters), as torch's LayerNorm over C."""

    kind = "layernorm"
    rule = "layernorm"
    keywords = ("layernorm",)
    usage = "layernorm [epsE], e.g. `layernorm eps1e-6`"
    foreign = {"layer_norm": "layernorm", "layernorm2d": "layernorm", "ln": "layernorm"}
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

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        eps = r.words[0] if r.words else None
        layer = cls(r.span(), r.text(), eps.number if eps else None)
        layer.options = {"epsilon": eps.pos} if eps else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        eps = r.words[0].number if r.words else cls.DEFAULT_EPSILON
        eps_arg = f", eps={eps!r}" if eps != cls.DEFAULT_EPSILON else ""
        if t.vector:
            return f"nn.LayerNorm({t.py(t.c_in)}{eps_arg})"
        t.helper("LayerNorm2d", LAYER_NORM_2D)
        return f"LayerNorm2d({t.py(t.c_in)}{eps_arg})"

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

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .channels_numpy import layernorm_step
        return layernorm_step(self, w)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import norm, steps
        weight, bias = w["weight"], w["bias"]
        return steps.unary(lambda x: norm.layer_norm_forward(x, weight, bias, self.epsilon),
                           norm.layer_norm_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """LayerNormalization from opset 17 (between two Transposes on a volume: it
        normalises the trailing axes); before, its ReduceMean/Sqrt form over axis 1."""
        x, eps = inputs[0], self.epsilon
        if g.opset < 17:
            return self._onnx_decomposed(g, x, len(self.input_shape) + 1)
        weight, bias = g.weight(self, "weight"), g.weight(self, "bias")
        if len(self.input_shape) == 1:
            return g.node(self, "LayerNormalization", [x, weight, bias], self.name, axis=-1,
                          epsilon=eps)
        nhwc = g.node(self, "Transpose", [x], f"{self.name}.nhwc", name=f"{self.name}.nhwc",
                      perm=[0, 2, 3, 1])
        normed = g.node(self, "LayerNormalization", [nhwc, weight, bias],
                        f"{self.name}.normed", name=f"{self.name}.norm", axis=-1, epsilon=eps)
        return g.node(self, "Transpose", [normed], self.name, name=self.name, perm=[0, 3, 1, 2])

    def _onnx_decomposed(self, g: OnnxGraph, x: str, rank: int) -> str:
        """(x − mean) / √(var + ε) · weight + bias, reducing axis 1."""
        c = self.input_shape[-1]
        shape = (c, 1, 1) if rank == 4 else (c,)
        weight, bias = g.weight(self, "weight", shape), g.weight(self, "bias", shape)
        n = self.name
        mean = g.node(self, "ReduceMean", [x], f"{n}.mean", name=f"{n}.mean", axes=[1])
        centred = g.node(self, "Sub", [x, mean], f"{n}.centred", name=f"{n}.centred")
        square = g.node(self, "Mul", [centred, centred], f"{n}.square", name=f"{n}.square")
        var = g.node(self, "ReduceMean", [square], f"{n}.var", name=f"{n}.var", axes=[1])
        eps = g.constant(f"{n}.epsilon", self.epsilon)
        std = g.node(self, "Sqrt", [g.node(self, "Add", [var, eps], f"{n}.var_eps",
                                           name=f"{n}.var_eps")], f"{n}.std", name=f"{n}.std")
        normed = g.node(self, "Div", [centred, std], f"{n}.normed", name=f"{n}.normed")
        scaled = g.node(self, "Mul", [normed, weight], f"{n}.scaled", name=f"{n}.scaled")
        return g.node(self, "Add", [scaled, bias], n)


class LayerScale(Layer):
    """`scale`: a learnable multiplier per channel (ConvNeXt's `layer_scale`, C parameters).

    Like torch's bare `nn.Parameter` of shape (C, 1, 1), its one array is keyed by
    the layer's own name (`features.1.0.layer_scale`), not `NAME.weight`.
    """

    kind = "scale"
    rule = "scale"
    keywords = ("scale",)
    pointwise = True
    saves = ("input",)   # and its scale

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        return [cls(r.span(), r.keyword.text)]

    @classmethod
    def writes_forward(cls, stmt: LayerStmt) -> bool:
        return True

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        """A bare parameter of the module, multiplied in forward (as torch's CNBlock)."""
        ref = t.parameter(f"torch.ones({t.py(t.c_in)}, 1, 1)")
        t.forward(f"x = x * {ref}")
        return None

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

    per_channel_affine = True

    def affine(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """x·gamma + 0, per channel, for folding into the layer before it."""
        import numpy as np
        gamma = w[""].reshape(-1)   # (C, 1, 1) as torch keeps it → one factor per channel
        return gamma, np.zeros_like(gamma)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        gamma, _ = self.affine(w)
        return lambda x: x * gamma

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        gamma = w[""]
        return steps.unary(lambda x: channels.layer_scale_forward(x, gamma),
                           channels.layer_scale_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        # the state_dict key is the layer's own name, which names its output value here
        gamma = g.weight(self, "", name=f"{self.name}.scale")
        return g.node(self, "Mul", [inputs[0], gamma], self.name)   # (C, 1, 1) over H×W


class Linear(Layer):
    """`linear N [nobias]`: an fc layer applied to each pixel's channel vector.

    Unlike `fc`, it does not flatten: H×W×C becomes H×W×N (a vector of C values
    becomes N). Weights (N, C) and bias (N,), as torch's nn.Linear.
    """

    kind = "linear"
    rule = "linear"
    keywords = ("linear",)
    usage = "linear N [nobias] [relu|relu6|tanh|sigmoid|softmax]"
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

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size, *rest = r.words
        units = r.size(size, (1,), "the unit count of `linear`")[0]
        layer = cls(r.span(), r.text(), units, bias=not rest)
        return r.finish(layer, {}, {"units": size.pos})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        size, *rest = r.words
        units = r.size(size, (1,), "the unit count of `linear`")[0]
        args = f"{t.py(t.c_in)}, {t.py(units)}" + (", bias=False" if rest else "")
        t.out(units)
        if t.vector:
            return f"nn.Linear({args})"
        t.helper("PixelLinear", PIXEL_LINEAR)
        return f"PixelLinear({args})"

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

    fuses_activation = True
    folds_affine = True

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .channels_numpy import linear_step
        return linear_step(self, w)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import dense, steps
        weight, bias = w["weight"], w.get("bias")
        return steps.weighted(lambda x: dense.linear_forward(x, weight, bias),
                              dense.linear_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x, units, c = inputs[0], self.units, self.in_features
        bias = [g.weight(self, "bias")] if self.bias else []
        if len(self.input_shape) == 1:
            return g.node(self, "Gemm", [x, g.weight(self, "weight"), *bias], self.name, transB=1)
        # on a volume, the same (out, in) matrix applied to every pixel is a 1×1 convolution
        return g.node(self, "Conv", [x, g.weight(self, "weight", (units, c, 1, 1)), *bias],
                      self.name, kernel_shape=[1, 1])


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

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np
        start, stop = self.channels
        return lambda x: np.ascontiguousarray(x[..., start:stop])   # a copy: written in place

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        return steps.unary(lambda x: channels.chunk_forward(x, self.index, self.count),
                           channels.chunk_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """One output of a Split into `count` equal parts; the others are left unused."""
        size = self.output_shape[-1]
        outputs = [self.name if i == self.index else f"{self.name}.unused{i}"
                   for i in range(self.count)]
        split = g.int64s(self, f"{self.name}.sizes", [size] * self.count)
        return g.node(self, "Split", [inputs[0], split], outputs, axis=1)


class Shuffle(Layer):
    """`shuffle G`: channel shuffle (ShuffleNet): the C channels, seen as G groups of
    C/G, are interleaved, so channel g·(C/G) + i moves to i·G + g."""

    kind = "shuffle"
    rule = "shuffle"
    keywords = ("shuffle",)
    usage = "shuffle G, e.g. `shuffle 2`"
    foreign = {"channel_shuffle": "shuffle 2"}
    pointwise = True
    saves = ()

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        groups = r.words[0]
        layer = cls(r.span(), r.text(), r.number(groups))
        layer.options = {"groups": groups.pos}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return f"nn.ChannelShuffle({t.py(r.number(r.words[0]))})"

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

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .channels_numpy import shuffle_step
        return shuffle_step(self)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        return steps.unary(lambda x: channels.shuffle_forward(x, self.groups),
                           channels.shuffle_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Reshape to (N, G, C/G, H, W), swap the two channel axes, reshape back."""
        h, w, c = self.input_shape
        grp, n = self.groups, self.name
        grouped = g.node(self, "Reshape", [inputs[0], g.int64s(self, f"{n}.grouped_shape",
                                                                [0, grp, c // grp, h, w])],
                         f"{n}.grouped", name=f"{n}.grouped")
        swapped = g.node(self, "Transpose", [grouped], f"{n}.swapped", name=f"{n}.swapped",
                         perm=[0, 2, 1, 3, 4])
        return g.node(self, "Reshape", [swapped, g.int64s(self, f"{n}.shape", [0, c, h, w])], n)
