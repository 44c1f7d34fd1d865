"""Layers that work on the channels of each pixel: linear, a channel chunk (one branch
of `split`) and channel shuffle. (The layer scale is in scaling.py.)

ConvNeXt applies its two linear layers (and its layer norm, norm.py) to every pixel's
channel vector (torch permutes to channels last and back; netspec's volumes have no
layout, so the permutes are not layers here). ShuffleNetV2 splits the channels into
halves and shuffles them after the concatenation.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The module the generated PyTorch code defines for itself: torch's own, applied to each
#: pixel's channels (channels last).
PIXEL_LINEAR = '''class PixelLinear(nn.Linear):
    """A linear layer applied to the channels of each pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x.permute(0, 2, 3, 1), self.weight, self.bias)
        return y.permute(0, 3, 1, 2)'''


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

    onnx_ops = ("Conv",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """The 1×1 Conv netspec writes for `linear N` on a volume (its doc_string says so)."""
        if r.statement(node).split(" ", 1)[0] not in cls.keywords:
            return "netspec's own `linear` on a volume"
        units, c = r.dims(node.input[1])[:2]
        words = [cls.keywords[0], r.num("", units, None, "n")]
        weights = {"weight": r.lazy(node.input[1], lambda w: w.reshape(units, c))}
        if len(node.input) > 2 and node.input[2]:
            weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
        else:
            words.append("nobias")
        r.emit(node, cls, words, [node.input[0]], weights)
        return None


class Chunk(Layer):
    """Branch `index` (from 0) of a `split { ... }`: the index-th of `count` equal
    runs of channels, which that branch reads (torch's `x.chunk(count, dim=1)`); or of
    `split N,N,… { ... }`, the index-th of runs of those sizes (`runs`, adding up to the
    input's channels: torch's `torch.split(x, [N, N, …], 1)`)."""

    kind = "chunk"
    #: The statement whose branches read chunks, one each, and its form.
    MADE_BY: ClassVar[str] = "split"
    MADE_BY_USAGE: ClassVar[str] = "split [N,N,...] { branch { ... } branch { ... } }"
    foreign = {"chunk": "split { branch {...} branch {...} }"}
    delegated = {"read": "`split { … }` (netspec.language.builder)",
                 "torch": "`split { … }` (netspec.backends.torch.joins)"}
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        a, b = self.channels
        return [f"channels {a}…{b - 1} of {self.input_shape[-1]}, "
                f"out = {shape_str(self.output_shape)}"]

    def __init__(self, pos: Pos, text: str, index: int, count: int,
                 runs: tuple[int, ...] | None = None) -> None:
        super().__init__(pos, text)
        self.index = index
        self.count = count
        self.runs = runs   # the sizes written, or None for equal runs

    @property
    def sizes(self) -> list[int]:
        """Every run's size (its input known)."""
        if self.runs is not None:
            return list(self.runs)
        return [self.input_shape[-1] // self.count] * self.count

    @property
    def channels(self) -> tuple[int, int]:
        """The [start, stop) channels this chunk takes."""
        start = sum(self.sizes[:self.index])
        return start, start + self.sizes[self.index]

    def check_options(self, rep: Reporter) -> None:
        """The runs written: one per branch, each at least 1 (said once, by the first)."""
        if self.runs is None or self.index:
            return
        if len(self.runs) != self.count:
            rep.error(self.where("runs"), f"`split` into {len(self.runs)} runs has "
                                          f"{self.count} branches", ShapeError,
                      hint="write one run size per branch")
        elif min(self.runs) < 1:
            rep.error(self.where("runs"), f"a run of `split` must be at least 1 channel, "
                                          f"not {min(self.runs)}", ShapeError)

    def _runs_fit(self) -> bool:
        return self.runs is None or len(self.runs) == self.count and min(self.runs) >= 1

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        c = shape[-1]
        if not self._runs_fit():
            return None
        if self.runs is not None and sum(self.runs) != c:
            if self.index == 0:
                rep.error(self.where("runs"), f"the runs of `split` add up to {sum(self.runs)} "
                                              f"channels, but its input is {shape_str(shape)}",
                          ShapeError, hint=f"make them add up to {c} (`C` is the input's "
                                           f"channels: `{{C - 16}},16`)")
            return None
        if self.runs is None and c % self.count:
            if self.index == 0:   # one error per split, not one per branch
                rep.error(self.pos, f"`split` into {self.count} branches needs channels "
                                    f"divisible by {self.count}, but its input is "
                                    f"{shape_str(shape)}", ShapeError,
                          hint=f"give the layer before it a multiple of {self.count} channels,"
                               f" or write the runs' sizes (`split N,N,... {{`)")
            return None
        a, b = self.channels
        self.output_shape = (*shape[:-1], b - a)
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
        start, stop = self.channels
        return steps.unary(lambda x: channels.run_forward(x, start, stop),
                           channels.run_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """One output of a Split into the runs; the others are left unused."""
        outputs = [self.name if i == self.index else f"{self.name}.unused{i}"
                   for i in range(self.count)]
        split = g.int64s(self, f"{self.name}.sizes", self.sizes)
        return g.node(self, "Split", [inputs[0], split], outputs, axis=1)

    onnx_ops = ("Split",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """x.chunk(n, dim=1) or torch.split(x, [N, …], 1): one chunk per output read
        (netspec's `split { … }`, with the runs' sizes where they differ)."""
        a = r.attrs(node)
        x = r.shape(node.input[0])
        n = len(node.output)
        if a.get("axis", 0) % len(x) != 1:
            r.fail("Split along an axis other than the channels (axis 1)")
        sizes = [int(v) for v in r.array(node.input[1]).reshape(-1)] if len(node.input) > 1 \
            and node.input[1] else list(a.get("split", [])) or [-(-x[1] // n)] * (n - 1) + \
            [x[1] - -(-x[1] // n) * (n - 1)]   # opset 18's num_outputs: ceil, the rest last
        if sum(sizes) != x[1] or min(sizes) < 1:
            r.fail(f"a Split into channel runs {sizes} of {x[1]} channels")
        for i, out in enumerate(node.output):
            if r.uses(out):
                layer = r.emit(node, cls, [], [node.input[0]], output=i)
                layer.chunk = (i, n)
                layer.runs = tuple(sizes) if len(set(sizes)) > 1 else ()
        return None


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

    def explain(self) -> list[str]:
        c, g = self.output_shape[-1], self.groups
        return [f"out = in = {shape_str(self.output_shape)}, its channels reordered: the "
                f"{c} channels as {g} groups of {c // g}, channel g·{c // g} + i moves to "
                f"i·{g} + g", "params = 0, FLOPs = 0 (a permutation)"]

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

    onnx_ops = ("Reshape", "Transpose")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Its three steps: reshape to N×G×(C/G)×H×W, swap the group axes, reshape back."""
        steps = r.pending("shuffle")   # value → (step, x, G)
        step = steps.get(r.resolve(node.input[0]))
        why = "`shuffle G` (reshape to N×G×(C/G)×H×W, swap the group axes, reshape back)"
        if node.op_type == "Transpose":
            if step is None or step[0] != "grouped" or \
                    list(r.attrs(node).get("perm", [])) != [0, 2, 1, 3, 4]:
                return why
            steps[node.output[0]] = ("swapped", step[1], step[2])
            return None
        x, known = r.shape(node.input[0]), tuple(r.shapes.get(node.output[0], ()))
        if step is not None and step[0] == "swapped" and known == tuple(r.shape(step[1])):
            r.emit(node, cls, [cls.keywords[0], r.num("", step[2], None, "g")], [step[1]])
        elif len(x) == 4 and len(known) == 5 and known[1] * known[2] == x[1] and \
                tuple(known[3:]) == x[2:]:
            steps[node.output[0]] = ("grouped", r.resolve(node.input[0]), int(known[1]))
        else:
            return why
        return None
