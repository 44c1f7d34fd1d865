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

