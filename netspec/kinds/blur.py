"""Blur pooling: anti-aliased downsampling (Zhang, 2019), timm's BlurPool2d in TResNet,
resnetblur and densenetblur: every channel reflect-padded, then filtered by one fixed
binomial F×F kernel (the outer product of C(F−1, k)/2^(F−1)) at a stride. It has no
trained weights (timm keeps the filter as a buffer outside the state_dict).
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter
from .window import _Windowed

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The module the generated PyTorch code defines for `blur`: timm's BlurPool2d, its filter a
#: buffer that is not in the state_dict.
BLUR_POOL_2D = '''class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (timm's BlurPool2d): reflect padding, then each channel
    filtered by a fixed binomial kernel at a stride."""

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        pad = ((stride - 1) + (filt_size - 1)) // 2
        self.padding = [pad, pad, pad, pad]
        row = [1.0]   # Pascal's triangle: C(filt_size − 1, k)
        for _ in range(filt_size - 1):
            row = [a + b for a, b in zip(row + [0.0], [0.0] + row)]
        coeffs = torch.tensor(row) / 2 ** (filt_size - 1)
        filt = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("filt", filt, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, self.padding, mode="reflect")
        return nn.functional.conv2d(x, self.filt, stride=self.stride, groups=self.channels)'''


class Blur(_Windowed):
    """`blur [F] [sN]`: F 3 and stride 2 unless written; padding ((s − 1) + (F − 1))/2
    (rounded down) on every side, mirrored; output floor((n + 2p − F)/s) + 1."""

    kind = "blur"
    draw_kernel = "kern pool"
    draw_colour = "#f4a6a6"
    rule = "blur"
    keywords = ("blur",)
    usage = "blur [F] [sN], e.g. `blur 3 s2` (the default)"
    foreign = {"blurpool": "blur", "blurpool2d": "blur", "antialias": "blur"}
    SIZE, STRIDE = 3, 2
    saves = ("input",)   # torch's reflect padding keeps its input, the conv the padded copy

    def __init__(self, pos: Pos, text: str, size: int, stride: int) -> None:
        super().__init__(pos, text, (size, size), stride, ((stride - 1) + (size - 1)) // 2)

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size = next((w for w in r.words if w.type == "VALUE"), None)
        opts = r.options([w for w in r.words if w.type != "VALUE"])
        layer = cls(r.span(), r.text(), r.number(size) if size else cls.SIZE,
                    opts["stride"][1] if "stride" in opts else cls.STRIDE)
        return r.finish(layer, opts, {"kernel": size.pos if size else None})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        size = next((w for w in r.words if w.type == "VALUE"), None)
        opts = r.options([w for w in r.words if w.type != "VALUE"])
        t.helper("BlurPool2d", BLUR_POOL_2D)
        f = r.number(size) if size is not None else E.Num(cls.SIZE)
        s = opts["stride"][1] if "stride" in opts else E.Num(cls.STRIDE)
        args = [t.py(t.c_in)]
        if size is not None:
            args.append(f"filt_size={t.py(f)}")
        if "stride" in opts:
            args.append(f"stride={t.py(s)}")
        # H×W stays at stride 1 with an odd filter (padded by (F − 1)/2 on each side)
        t.keeps_size(E.Compare(s, (("==", E.Num(1)),)))
        t.keeps_size(E.Compare(E.Bin("%", f, E.Num(2)), (("==", E.Num(1)),)))
        return f"BlurPool2d({', '.join(args)})"

    def check_options(self, rep: Reporter) -> None:
        if self.kernel[0] < 2:
            rep.error(self.where("kernel"), f"the blur filter must be at least 2 wide, not "
                                            f"{self.kernel[0]}", ShapeError,
                      hint="`blur 3` (the default) is [1 2 1]/4 along each axis")
        if self.stride_opt is not None:
            self._positive(rep, "stride", "stride", self.stride_opt)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.kernel[0] < 2 or min(self.strides) < 1:
            return None
        p = self.padding
        if min(shape[:2]) <= p:
            rep.error(self.pos, f"`{self.name}` mirrors {p} pixels on each side, which needs "
                                f"an input larger than {p}×{p}, not {shape_str(shape)}",
                      ShapeError, hint="reflect padding copies pixels from inside the input")
            return None
        spatial = self._spatial(shape, rep)
        if spatial is None:
            return None
        self.output_shape = (*spatial, shape[2])
        self.macs = prod(self.output_shape) * self.kernel[0] ** 2
        return self.output_shape

    def saved_extra_bytes(self) -> int:
        """The padded copy the conv keeps."""
        h, w, c = self.input_shape
        return 4 * (h + 2 * self.padding) * (w + 2 * self.padding) * c

    def saved_pass_bytes(self) -> int:
        """The filter the conv keeps, one per channel."""
        return 4 * self.input_shape[2] * self.kernel[0] ** 2

    def flops(self) -> int:
        """A depthwise conv with a fixed F×F filter: two per multiply-add, no bias."""
        return 2 * self.macs

    def explain(self) -> list[str]:
        f, (s, _), p = self.kernel[0], self.strides, self.padding
        oh, ow, c = self.output_shape
        return [f"padding = floor(((s − 1) + (F − 1))/2) = floor((({s} − 1) + ({f} − 1))/2) = "
                f"{p}, mirrored",
                *self.explain_size(),
                f"filter = binomial row C({f - 1}, k)/2^{f - 1}, its outer product; params = 0",
                f"MACs = {oh}·{ow}·{c}·{f}·{f} = {self.macs:,}",
                f"FLOPs = 2·MACs = {self.flops():,}"]

    # ---- backends ------------------------------------------------------------------------
    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from ..numerics.backward.blur import blur_forward
        f, s, p = self.kernel[0], self.strides[0], self.padding
        return lambda x: blur_forward(x, f, s, p)[0]

    def numpy_scratch(self, batch: int) -> int:
        """The padded copy and the rows filtered along H."""
        h, w, c = self.input_shape
        p = self.padding
        return 4 * batch * (h + 2 * p) * (w + 2 * p) * c + \
            4 * batch * self.output_shape[0] * (w + 2 * p) * c

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import blur, steps
        f, s, p = self.kernel[0], self.strides[0], self.padding
        return steps.unary(lambda x: blur.blur_forward(x, f, s, p), blur.blur_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Pad (mode reflect), then Conv with one constant binomial filter per channel."""
        import numpy as np

        from ..numerics.backward.blur import binomial
        h, w, c = self.input_shape
        f, p, n = self.kernel[0], self.padding, self.name
        x = inputs[0]
        if p:
            pads = g.int64_initializer(f"{n}.pads", [0, 0, p, p, 0, 0, p, p])
            x = g.node(self, "Pad", [x, pads], f"{n}.padded", name=f"{n}.pad", mode="reflect")
            g.record(x, (h + 2 * p, w + 2 * p, c))
        row = binomial(f)
        kernel = np.broadcast_to(np.outer(row, row), (c, 1, f, f))
        return g.node(self, "Conv", [x, g.constant(f"{n}.filter", kernel)], n,
                      kernel_shape=[f, f], strides=list(self.strides), group=c)

    onnx_ops = ("Pad", "Conv")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Pad (reflect, the same on every side of H and W) and the depthwise Conv after it
        whose weight is the binomial filter, unpadded and without a bias."""
        import numpy as np

        from ..numerics.backward.blur import binomial
        padded = r.pending("blur")   # padded value → (input, padding)
        why = "`blur` (reflect padding, then a depthwise conv with a binomial filter)"
        if node.op_type == "Pad":
            a = r.attrs(node)
            pads = [int(v) for v in r.array(node.input[1]).reshape(-1)] \
                if len(node.input) > 1 and r.const(node.input[1]) else []
            then = [c.op_type for c in r.consumers(node.output[0])]
            if a.get("mode") != "reflect" or len(pads) != 8 or then != ["Conv"] or \
                    pads[:2] + pads[4:6] != [0, 0, 0, 0] or len(set(pads[2:4] + pads[6:])) != 1:
                return why
            padded[node.output[0]] = (r.resolve(node.input[0]), pads[2])
            return None
        x, pad = padded.get(r.resolve(node.input[0]), (r.resolve(node.input[0]), 0))
        a = r.attrs(node)
        c = r.shape(x)[1]
        if not r.const(node.input[1]) or len(node.input) > 2 and node.input[2] or \
                int(a.get("group", 1)) != c or any(a.get("pads", [0])) or \
                a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or \
                set(a.get("dilations", [1])) != {1}:
            return why
        weight = r.array(node.input[1])
        f, strides = weight.shape[-1], list(a.get("strides", [1, 1]))
        stride = strides[0]
        if weight.shape != (c, 1, f, f) or len(set(strides)) != 1 or \
                pad != ((stride - 1) + (f - 1)) // 2 or f < 2 or \
                not np.allclose(weight, np.outer(binomial(f), binomial(f)), rtol=0, atol=1e-7):
            return why
        words = [cls.keywords[0], r.num("", f, cls.SIZE, "f"), r.num("s", stride, cls.STRIDE, "s")]
        r.emit(node, cls, words, [x])
        return None
