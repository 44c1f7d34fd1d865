"""Channel attention by a convolution across the channels: ECA-Net's `eca`.

ECA-Net gates its channels by a 1-D convolution across the pooled channel vector:
`gate { pool avg global; conv: eca; sigmoid }` is timm's EcaModule. (Split attention's
radix softmax and sum are in radix.py.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The generated PyTorch code's module: ECA's convolution across the channels (its
#: `weight` (1, 1, k), as timm's EcaModule's `conv`).
CHANNEL_CONV = '''class ChannelConv1d(nn.Conv1d):
    """A 1-D convolution across the channels of each value (ECA), zero-padded to keep C;
    kernel_size 0: from the channels, as timm's EcaModule (t = int((log2 C + 1) / 2),
    made odd, at least 3)."""

    def __init__(self, channels: int, kernel_size: int = 0) -> None:
        if not kernel_size:
            t = ((2 * channels).bit_length() - 1) // 2
            kernel_size = max(t if t % 2 else t + 1, 3)
        super().__init__(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.pad = (kernel_size - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv1d(x.reshape(x.shape[0], 1, -1), self.weight, padding=self.pad)
        return y.reshape(x.shape)'''

#: The pending steps of ECA's ONNX pattern, by the value each stopped at.
PATTERN = "eca across channels"


def eca_kernel(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """ECA-Net's kernel size for C channels (timm's EcaModule): t = int(|log2 C + β| / γ),
    the odd number t or t + 1, at least 3. C = 64 → 3; 128 … 1024 → 5; 2048 → 7."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def _per_value(shape: Shape) -> bool:
    """A vector, or one value per channel (1×1×C)."""
    return len(shape) == 1 or shape[:2] == (1, 1)


class Eca(Layer):
    """`eca [K]`: a 1-D convolution across the channels of one value per channel (1×1×C,
    or a vector), K taps without bias, zero-padded to keep C (ECA-Net; timm's EcaModule's
    `conv`, a Conv1d(1, 1, K)); K from C when not written (`eca_kernel`)."""

    kind = "eca"
    rule = "eca"
    keywords = ("eca",)
    usage = "eca [K]`, e.g. `gate { pool avg global; eca; sigmoid }` or `eca 5"
    pointwise = True     # across channels only, at each pixel
    saves = ("input",)   # and its weight
    draw_colour = "#f5e1c8"

    def __init__(self, pos: Pos, text: str, kernel: int | None) -> None:
        super().__init__(pos, text)
        self.written = kernel   # as written, or None: from the channels
        self.kernel = kernel or 0

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size = r.words[0] if r.words else None
        layer = cls(r.span(), r.text(), r.number(size) if size is not None else None)
        layer.options = {"kernel": size.pos} if size is not None and size.pos else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        k = f", {t.py(r.number(r.words[0]))}" if r.words else ""   # else: from C, as timm
        t.helper("ChannelConv1d", CHANNEL_CONV)
        return f"ChannelConv1d({t.py(t.c_in)}{k})"

    def check_options(self, rep: Reporter) -> None:
        if self.written is not None and self._positive(rep, "kernel", "ECA kernel size",
                                                        self.written) and self.written % 2 == 0:
            rep.error(self.where("kernel"), f"ECA's kernel size must be odd, not "
                                            f"{self.written}", ShapeError,
                      hint="it pads (K − 1)/2 channels on each side to keep C")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not _per_value(shape):
            rep.error(self.pos, f"`eca` convolves across the channels of one value per "
                                f"channel (1×1×C, or a vector), but its input is "
                                f"{shape_str(shape)}", ShapeError,
                      hint="pool first, as ECA does: `gate { pool avg global; eca; sigmoid }`")
            return None
        if self.written is not None and (self.written < 1 or self.written % 2 == 0):
            return None
        c = shape[-1]
        self.kernel = self.written or eca_kernel(c)
        self.output_shape = shape
        self.params = self.kernel
        self.macs = c * self.kernel
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        return {"weight": (1, 1, self.kernel)}

    def attrs(self) -> dict:
        return {"kernel": [self.kernel, 1]}

    def flops(self) -> int:
        """Two per multiply-add (no bias)."""
        return 2 * self.macs

    def explain(self) -> list[str]:
        c, k = self.input_shape[-1], self.kernel
        lines = [] if self.written else [
            f"K = {k} from C = {c}: t = int((log₂ {c} + 1)/2) = "
            f"{int(abs(math.log(c, 2) + 1) / 2)}, made odd, at least 3"]
        return [*lines, f"out = in = {shape_str(self.output_shape)}, each channel from the "
                        f"{k} around it (zero padding {(k - 1) // 2} at each end)",
                f"params = {k} (no bias)", f"MACs = {c}·{k} = {self.macs:,}",
                f"FLOPs = 2·MACs = {self.flops():,}"]

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from ..numerics.backward.attention import channel_conv_forward
        weight = w["weight"]
        return lambda x: channel_conv_forward(x, weight)[0]

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import attention, steps
        weight = w["weight"]
        return steps.weighted(lambda x: attention.channel_conv_forward(x, weight),
                              lambda dy, cache, need_dx=True:
                              attention.channel_conv_backward(dy, cache))

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """N×C×1×1 reshaped (a vector unsqueezed) to N×1×C, a 1-D Conv (pads (K − 1)/2),
        then back. (A Reshape of N×1×C to N×C would read as a flatten.)"""
        c, k, n = self.input_shape[-1], self.kernel, self.name
        volume = len(self.input_shape) == 3
        row = g.node(self, "Reshape", [inputs[0], g.int64s(self, f"{n}.row", [-1, 1, c])],
                     f"{n}.row_out", name=f"{n}.row_out") if volume else \
            g.node(self, "Unsqueeze", [inputs[0], g.int64s(self, f"{n}.axis", [1])],
                   f"{n}.row_out", name=f"{n}.row_out")
        conv = g.node(self, "Conv", [row, g.weight(self, "weight")], f"{n}.conv",
                      kernel_shape=[k], pads=[(k - 1) // 2] * 2)
        if volume:
            return g.node(self, "Reshape", [conv, g.int64s(self, f"{n}.back", [-1, c, 1, 1])],
                          n, name=f"{n}.back_out")
        return g.node(self, "Squeeze", [conv, g.int64s(self, f"{n}.back", [1])], n,
                      name=f"{n}.back_out")

    onnx_ops = ("Reshape", "Unsqueeze", "Conv", "Squeeze")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Its three steps: Reshape (N, C, 1, 1) (or Unsqueeze (N, C)) to (N, 1, C); a Conv
        of one channel, K taps, no bias, pads (K − 1)/2; Reshape (or Squeeze) back."""
        why = "`eca` (Reshape to N×1×C, a 1-D Conv across the channels, Reshape back)"
        steps = r.pending(PATTERN)
        step = steps.get(r.resolve(node.input[0]))
        known = tuple(r.shapes.get(node.output[0], ()))
        if node.op_type == "Conv":
            dims = r.dims(node.input[1]) if r.const(node.input[1]) else ()
            k = dims[-1] if len(dims) == 3 else 0
            if step is None or step[0] != "row" or dims != (1, 1, k) or len(node.input) > 2 \
                    or list(r.attrs(node).get("pads", [0, 0])) != [(k - 1) // 2] * 2:
                return why
            steps[node.output[0]] = ("eca", step[1], node)
            return None
        x = r.shape(node.input[0])
        if step is not None and step[0] == "eca" and known == tuple(r.shape(step[1])):
            conv = step[2]
            r.emit(conv, cls, [cls.keywords[0], r.num("", r.dims(conv.input[1])[-1], None, "k")],
                   [step[1]], {"weight": r.lazy(conv.input[1])}, out=node.output[0])
        elif len(known) == 3 and known[1] == 1 and (len(x) == 2 or len(x) == 4
                                                    and tuple(x[2:]) == (1, 1)) and \
                known[2] == x[1]:
            steps[node.output[0]] = ("row", r.resolve(node.input[0]))
        else:
            return why
        return None
