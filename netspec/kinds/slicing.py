"""Layers that move values without computing any: a run of the channels (`slice`), and
space to depth (`s2d`).

DPN splits its dual path with channel slices (`x[:, :n]`, `x[:, n:]`), GhostNet keeps
the first channels of its concatenation (`[:, :out_chs]`). TResNet's stem folds each
4×4 block of pixels into the channels (timm's SpaceToDepth).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The module the generated PyTorch code defines for a slice (a module, so that it can sit
#: in an `nn.Sequential`; it has no weights).
CHANNEL_SLICE = '''class ChannelSlice(nn.Module):
    """Channels start to stop − 1 of the input: `x[:, start:stop]`."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]'''

def _fold(op: str, a: E.Expr, b: E.Expr) -> E.Expr:
    """a + b or a − b, computed where both are numbers (`ChannelSlice(4, 8)`, not `8 + -4`)."""
    if isinstance(a, E.Num) and isinstance(b, E.Num):
        return E.Num(a.n + b.n if op == "+" else a.n - b.n)
    return a if b == E.Num(0) else E.Bin(op, a, b)


#: ONNX Slice's "to the end": int64's largest value, as torch writes `x[:, a:]`.
_END = 2**63 - 1


#: The module the generated PyTorch code defines for space to depth: timm's SpaceToDepth.
SPACE_TO_DEPTH = '''class SpaceToDepth(nn.Module):
    """Each block×block patch of pixels into the channels, channel (i·block + j)·C + c for
    pixel (i, j) of the patch and channel c (timm's SpaceToDepth, ONNX's SpaceToDepth)."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        b = self.block
        x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(n, c * b * b, h // b, w // b)'''


class Slice(Layer):
    """`slice A:B`: channels A to B − 1 of a volume (or values of a vector), as torch's
    `x[:, A:B]`; an end left out is the first or the last channel, a negative end counts
    from the last. No weights, no FLOPs: a copy."""

    kind = "slice"
    rule = "slice"
    keywords = ("slice",)
    usage = "slice A:B`, e.g. `slice 0:64`, `slice :64` or `slice 64:"
    foreign = {"narrow": "slice A:B"}
    pointwise = True
    saves = ()   # its backward needs only the input's shape
    draw_colour = "#e8f0e0"

    def __init__(self, pos: Pos, text: str, start: int | None, stop: int | None) -> None:
        super().__init__(pos, text)
        self.start, self.stop = start, stop   # as written (None: left out)
        self.channels = (0, 0)                # [start, stop) resolved against the input

    @classmethod
    def _ends(cls, r: Reading) -> tuple:
        """(start, stop) as written, None for an end left out."""
        word = r.words[0]
        values = list(r.numbers(word))
        has_start, has_stop = word.range_ends
        return (values.pop(0) if has_start else None), (values.pop(0) if has_stop else None)

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        start, stop = cls._ends(r)
        layer = cls(r.span(), r.text(), start, stop)
        layer.options = {"range": r.words[0].pos} if r.words[0].pos else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        start, stop = cls._ends(r)
        c = t.c_in

        def from_start(e: E.Expr | None, default: E.Expr) -> E.Expr:
            if e is None:
                return default
            return _fold("-", c, E.Num(-e.n)) if isinstance(e, E.Num) and e.n < 0 else e
        first, last = from_start(start, E.Num(0)), from_start(stop, c)
        t.out(_fold("-", last, first))
        t.helper("ChannelSlice", CHANNEL_SLICE)
        return f"ChannelSlice({t.py(first)}, {t.py(last)})"

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        c = shape[-1]
        a = 0 if self.start is None else self.start + c if self.start < 0 else self.start
        b = c if self.stop is None else self.stop + c if self.stop < 0 else self.stop
        if not 0 <= a < b <= c:
            what = f"channels {a} to {b - 1}" if a < b else "no channels"
            rep.error(self.where("range"), f"`{self.text}` takes {what}, but its input has "
                                           f"{c} ({shape_str(shape)})", ShapeError,
                      hint=f"the channels are numbered 0 to {c - 1}: `:N` takes the first N, "
                           f"`N:` those from N on, `-N:` the last N")
            return None
        self.channels = (a, b)
        self.output_shape = (*shape[:-1], b - a)
        return self.output_shape

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        a, b = self.channels
        return [f"channels {a}…{b - 1} of {self.input_shape[-1]}, "
                f"out = {shape_str(self.output_shape)}", "params = 0, FLOPs = 0 (a copy)"]

    def attrs(self) -> dict:
        return {"start": self.channels[0], "stop": self.channels[1]}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np
        a, b = self.channels
        return lambda x: np.ascontiguousarray(x[..., a:b])   # a copy: later steps write in place

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        a, b = self.channels
        return steps.unary(lambda x: channels.run_forward(x, a, b), channels.run_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        a, b = self.channels
        n = self.name
        return g.node(self, "Slice", [inputs[0], g.int64s(self, f"{n}.starts", [a]),
                                      g.int64s(self, f"{n}.ends", [b]),
                                      g.int64s(self, f"{n}.axes", [1])], n)

    onnx_ops = ("Slice",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """x[:, a:b]: starts, ends and axes constant, one axis (the channels), step 1."""
        why = "`slice A:B` (a run of the channels: one axis, 1, and step 1)"
        x = r.shape(node.input[0])
        consts = [i for i in node.input[1:] if i]
        if len(node.input) < 4 or not all(r.const(i) for i in consts):
            return why
        starts, ends, axes = ([int(v) for v in r.array(i).reshape(-1)] for i in node.input[1:4])
        steps = [int(v) for v in r.array(node.input[4]).reshape(-1)] \
            if len(node.input) > 4 and node.input[4] else [1]
        if len(axes) != 1 or axes[0] % len(x) != 1 or steps != [1] or len(x) not in (2, 4):
            return why
        c = int(x[1])
        a, b = (max(0, min(c, v + c if v < 0 else v)) for v in (starts[0], min(ends[0], _END)))
        if a >= b:
            r.fail(f"a Slice of no channels ({starts[0]} to {ends[0]} of {c})")
        r.emit(node, cls, [cls.keywords[0], f"{a}:{b}"], [node.input[0]])
        return None



class SpaceToDepth(Layer):
    """`s2d B`: each B×B patch of pixels into the channels (TResNet's stem, timm's
    SpaceToDepth): H×W×C becomes H/B × W/B × B²·C, pixel (i, j) of a patch and channel c
    going to channel (i·B + j)·C + c, as ONNX's SpaceToDepth (not torch's PixelUnshuffle,
    whose order is c·B² + i·B + j). No weights, no FLOPs: a permutation."""

    kind = "s2d"
    rule = "s2d"
    keywords = ("s2d",)
    usage = "s2d B`, e.g. `s2d 4"
    foreign = {"space_to_depth": "s2d 4", "pixel_unshuffle": "s2d 4 (channels in another order)"}
    saves = ()   # a permutation: its backward needs nothing
    draw_kernel = "kern pool"
    draw_colour = "#e8f0e0"

    def __init__(self, pos: Pos, text: str, block: int) -> None:
        super().__init__(pos, text)
        self.block = block

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        word = r.words[0]
        layer = cls(r.span(), r.text(), r.number(word))
        layer.options = {"block": word.pos} if word.pos else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        block = r.number(r.words[0])
        t.out(E.Bin("*", t.c_in, E.Num(block.n * block.n)) if isinstance(block, E.Num) else
              E.Bin("*", t.c_in, E.Bin("*", block, block)))
        t.keeps_size(E.Compare(block, (("==", E.Num(1)),)))
        t.helper("SpaceToDepth", SPACE_TO_DEPTH)
        return f"SpaceToDepth({t.py(block)})"

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "block", "space-to-depth block", self.block)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        b = self.block
        if not self._volume(shape, rep) or b < 1:
            return None
        h, w, c = shape
        if h % b or w % b:
            rep.error(self.where("block"), f"`s2d {b}` needs a height and width divisible by "
                                           f"{b}, but its input is {shape_str(shape)}",
                      ShapeError, hint=f"each {b}×{b} patch of pixels becomes one pixel: "
                                       f"give it a multiple of {b} (TResNet reads 224×224)")
            return None
        self.output_shape = (h // b, w // b, c * b * b)
        return self.output_shape

    def window(self) -> tuple:
        """Each output pixel reads one B×B patch: a B×B window at stride B."""
        b = self.block
        return (b, b, 0), (b, b, 0)

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        (h, w, c), b = self.input_shape, self.block
        return [f"out = {h}/{b} × {w}/{b} × {b}²·{c} = {shape_str(self.output_shape)} "
                f"(pixel (i, j) of each {b}×{b} patch, channel c → channel (i·{b} + j)·{c} + c)",
                "params = 0, FLOPs = 0 (a permutation)"]

    def attrs(self) -> dict:
        return {"kernel": [self.block] * 2, "stride": [self.block] * 2}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np

        from ..numerics.backward.resample import space_to_depth_forward
        return lambda x: np.ascontiguousarray(space_to_depth_forward(x, self.block)[0])

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import resample, steps
        return steps.unary(lambda x: resample.space_to_depth_forward(x, self.block),
                           resample.space_to_depth_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "SpaceToDepth", [inputs[0]], self.name, blocksize=self.block)

    onnx_ops = ("SpaceToDepth", "Reshape", "Transpose")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """ONNX's SpaceToDepth, or the three steps torch writes for timm's: a Reshape to
        N×C×(H/B)×B×(W/B)×B, a Transpose (0, 3, 5, 1, 2, 4), a Reshape to N×B²C×(H/B)×(W/B)."""
        why = "`s2d B` (SpaceToDepth, or its Reshape–Transpose–Reshape)"
        if node.op_type == "SpaceToDepth":
            block = int(r.attrs(node)["blocksize"])
            r.emit(node, cls, [cls.keywords[0], r.num("", block, None, "b")], [node.input[0]])
            return None
        steps = r.pending("s2d")   # value → (step, x, B)
        step = steps.get(r.resolve(node.input[0]))
        known = tuple(r.shapes.get(node.output[0], ()))
        if node.op_type == "Transpose":
            if step is None or step[0] != "patches" or \
                    list(r.attrs(node).get("perm", [])) != [0, 3, 5, 1, 2, 4]:
                return why
            steps[node.output[0]] = ("moved", step[1], step[2])
            return None
        x = r.shape(node.input[0])
        if step is not None and step[0] == "moved":
            src, b = r.shape(step[1]), step[2]
            if known[1:] != (src[1] * b * b, src[2] // b, src[3] // b):
                return why
            r.emit(node, cls, [cls.keywords[0], r.num("", b, None, "b")], [step[1]])
        elif len(x) == 4 and len(known) == 6 and known[3] == known[5] and known[1] == x[1] \
                and (known[2] * known[3], known[4] * known[5]) == tuple(x[2:]):
            steps[node.output[0]] = ("patches", r.resolve(node.input[0]), int(known[3]))
        else:
            return why
        return None
