"""Layers that make H×W larger: transposed convolution and upsampling.

Segmentation heads end at the input's size: FCN and DeepLab resize their
prediction to it (`upsample bilinear to input`), DeepLab's image-pooling branch
back to its branch's input (`to branch`), and U-Net doubles H×W with a learned
2×2 transposed convolution.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError, SpecError, SpecSyntaxError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import Layer, Shape, shape_str
from ..syntax.tree import LayerStmt
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


def transposed_output_size(n: int, f: int, s: int = 1, p: int = 0, d: int = 1,
                           output_padding: int = 0) -> int:
    """(n − 1)·s − 2p + d·(f − 1) + output_padding + 1, as torch's ConvTranspose2d."""
    return (n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1


class Deconv(Layer):
    """`deconv FxF [sN] [pN] [dN] [gN] [opN] [nobias] xK`: transposed convolution.

    Each input pixel scatters a K-channel F×F patch, spaced s apart; `pN` crops N
    from each border of the result and `opN` adds N rows and columns at the
    bottom/right (torch's output_padding). Weights (C_in, K/groups, FH, FW).
    """

    kind = "deconv"
    rule = "deconv"
    keywords = ("deconv",)
    usage = "deconv FxF [sN] [pN] [dN] [gN] [opN] [nobias] xK"
    foreign = {"convtranspose2d": "deconv", "conv_transpose": "deconv",
               "convtranspose": "deconv"}
    GROUPS_HINT = "groups must divide both the input channels and the filters"
    saves = ("input",)   # and its weight

    def window(self) -> None:
        """None: an output pixel reads input pixels 1/s apart, no stride-s window."""
        return None

    def flops(self) -> int:
        """Two per multiply-add, plus one add per output value for the bias."""
        return 2 * self.macs + (prod(self.output_shape) if self.bias else 0)

    def explain(self) -> list[str]:
        lines = []
        for axis, n, f, o in zip("HW", self.input_shape[:2], self.kernel, self.output_shape[:2]):
            lines.append(f"{axis}: out = ({n} − 1)·{self.stride} − 2·{self.padding} + "
                         f"{self.dilation}·({f} − 1) + {self.output_padding} + 1 = {o}")
        fh, fw = self.kernel
        c, kg = self.in_channels, self.filters // self.groups
        h, w = self.input_shape[:2]
        bias = f" + {self.filters}" if self.bias else ""
        return [*lines, f"params = {c}·{kg}·{fh}·{fw}{bias} = {self.params:,}",
                f"MACs = {h}·{w}·{c}·{kg}·{fh}·{fw} = {self.macs:,}",
                "FLOPs = 2·MACs" + (" + bias" if self.bias else "") + f" = {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, kernel: tuple[int, int], filters: int | None,
                 stride: int, padding: int, dilation: int, groups: int,
                 output_padding: int, bias: bool = True) -> None:
        super().__init__(pos, text)
        self.kernel = kernel
        self.filters = filters
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.output_padding = output_padding
        self.bias = bias
        self.in_channels = 0

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size, *rest = r.words
        opts = r.options(rest)
        kernel, depth = r.kernel(size)
        if depth is not None:
            r.rep.error(size.pos, f"write the kernel of `deconv` without a depth, not "
                                  f"`{size.text}`", SpecSyntaxError,
                        hint=f"`{kernel[0]}x{kernel[1]}`: the filters read every input channel")
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        layer = cls(r.span(), r.text(), kernel, get("filters", None), get("stride", 1),
                    get("padding", 0), get("dilation", 1), get("groups", 1),
                    get("output_padding", 0), bias=not get("nobias", False))
        return r.finish(layer, opts, {"kernel": size.pos})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        size, *rest = r.words
        opts = r.options(rest)
        kernel, _ = r.kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else E.Num(d)  # noqa: E731
        k = get("filters", 0)
        args = [t.py(t.c_in), t.py(k), t.py(kernel)]
        for key, default in (("stride", 1), ("padding", 0), ("output_padding", 0),
                             ("groups", 1), ("dilation", 1)):
            if t.py(get(key, default)) != str(default):
                args.append(f"{key}={t.py(get(key, default))}")
        if "nobias" in opts:
            args.append("bias=False")
        s, p, d, op = (get(key, v) for key, v in (("stride", 1), ("padding", 0),
                                                  ("dilation", 1), ("output_padding", 0)))
        for f in dict.fromkeys(kernel):   # it keeps H×W only at stride 1, cropping what it adds
            t.keeps_size(E.Logic("and", (E.Compare(s, (("==", E.Num(1)),)), E.Compare(
                E.Bin("+", E.Bin("*", d, E.Bin("-", f, E.Num(1))), op),
                (("==", E.Bin("*", E.Num(2), p)),)))))
        t.out(k)
        return f"nn.ConvTranspose2d({', '.join(args)})"

    @property
    def strides(self) -> tuple[int, int]:
        return self.stride, self.stride

    def check_options(self, rep: Reporter) -> None:
        for f in self.kernel:
            self._positive(rep, "kernel", "kernel size", f)
        self._positive(rep, "stride", "stride", self.stride)
        self._positive(rep, "dilation", "dilation", self.dilation)
        if self.filters is None:
            rep.error(self.pos, "`deconv` needs a filter count", SpecError,
                      hint=f"add `xK` for K filters, e.g. `{self.text} x16`")
        else:
            self._positive(rep, "filters", "filter count", self.filters)
        if self.padding < 0:
            rep.error(self.where("padding"), f"padding must not be negative, not {self.padding}",
                      ShapeError)
        if self.output_padding < 0:
            rep.error(self.where("output_padding"), f"output padding must not be negative, "
                                                    f"not {self.output_padding}", ShapeError)
        elif self.output_padding >= max(self.stride, self.dilation) >= 1:
            rep.error(self.where("output_padding"),
                      f"output padding {self.output_padding} must be smaller than the stride "
                      f"({self.stride}) or the dilation ({self.dilation})", ShapeError,
                      hint="output padding only picks among the sizes a stride can reach")
        if self._positive(rep, "groups", "groups", self.groups) and self.filters and \
                self.filters % self.groups:
            rep.error(self.where("groups"), f"groups {self.groups} does not divide the "
                                            f"{self.filters} filters", ShapeError,
                      hint=self.GROUPS_HINT)

    def _valid(self) -> bool:
        return (min(self.kernel) >= 1 and self.stride >= 1 and self.dilation >= 1
                and self.padding >= 0
                and 0 <= self.output_padding < max(self.stride, self.dilation)
                and self.filters is not None and self.filters >= 1 and self.groups >= 1
                and not self.filters % self.groups)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or not self._valid():
            return None
        c_in, g, k = shape[2], self.groups, self.filters
        if c_in % g:
            rep.error(self.where("groups"), f"groups {g} does not divide the {c_in} input "
                                            f"channels", ShapeError, hint=self.GROUPS_HINT)
            return None
        out = []
        for axis, n, f in zip(("height", "width"), shape[:2], self.kernel):
            o = transposed_output_size(n, f, self.stride, self.padding, self.dilation,
                                       self.output_padding)
            if o < 1:
                rep.error(self.pos, f"`{self.name}` output {axis} is {o}: ({n} − 1)·{self.stride}"
                                    f" − 2·{self.padding} + {self.dilation}·({f} − 1) + "
                                    f"{self.output_padding} + 1 = {o} < 1", ShapeError,
                          hint="the padding crops more than the transposed conv produces")
                return None
            out.append(o)
        self.in_channels = c_in
        per_pixel = c_in * (k // g) * self.kernel[0] * self.kernel[1]
        self.params = per_pixel + (k if self.bias else 0)
        self.macs = shape[0] * shape[1] * per_pixel
        self.output_shape = (out[0], out[1], k)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        weight = {"weight": (self.in_channels, self.filters // self.groups, *self.kernel)}
        return weight | {"bias": (self.filters,)} if self.bias else weight

    def attrs(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.strides),
                "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
                "output_padding": self.output_padding, "filters": self.filters,
                "bias": self.bias}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .resample_numpy import deconv_step
        return deconv_step(self, w)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """torch's conv_transpose2d and its backward (netspec.numerics.backward.deconv)."""
        from ..numerics.backward import deconv, steps
        weight, bias = w["weight"], w.get("bias")
        return steps.weighted(lambda x: deconv.deconv2d_forward(
            x, weight, bias, self.stride, self.padding, self.dilation, self.output_padding,
            self.groups), deconv.deconv2d_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        weights = [g.weight(self, "weight")] + ([g.weight(self, "bias")] if self.bias else [])
        p, op = self.padding, self.output_padding
        return g.node(self, "ConvTranspose", [inputs[0], *weights], self.name,
                      kernel_shape=list(self.kernel), strides=list(self.strides),
                      pads=[p, p, p, p], dilations=[self.dilation] * 2, group=self.groups,
                      output_padding=[op, op])

    onnx_ops = ("ConvTranspose",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """ConvTranspose with explicit pads, the same on every side."""
        a = r.attrs(node)
        x, w = node.input[0], node.input[1]
        _, k_per_group, *kernel = r.dims(w)
        if len(kernel) != 2:
            r.fail(f"a {len(kernel)}-D transposed convolution: netspec works over height and "
                   f"width")
        if a.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in a:
            r.fail("a transposed convolution sized by auto_pad or output_shape: netspec reads "
                   "explicit pads and output_padding")
        groups = int(a.get("group", 1))
        words = [cls.keywords[0], f"{kernel[0]}x{kernel[1]}",
                 r.num("s", r.square(list(a.get("strides", [1, 1])), "stride"), 1, "s"),
                 r.num("p", r.square(list(a.get("pads", [0, 0, 0, 0])), "padding"), 0, "p"),
                 r.num("d", r.square(list(a.get("dilations", [1, 1])), "dilation"), 1, "d"),
                 r.num("g", groups, 1, "g"),
                 r.num("op", r.square(list(a.get("output_padding", [0, 0])), "output padding"),
                       0, "op")]
        weights = {"weight": r.lazy(w)}
        if len(node.input) > 2 and node.input[2]:
            weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
        else:
            words.append("nobias")
        words.append(r.num("x", k_per_group * groups, None, "c"))
        r.emit(node, cls, words, [x], weights)
        return None


class Upsample(Layer):
    """`upsample [nearest|bilinear] F` (by a factor, `FHxFW` per axis), `... to HxW`,
    `... to input` (the network's input H×W) or `... to branch` (the H×W of the
    value the enclosing branch reads, as DeepLab's image pooling).

    Nearest takes source pixel floor(dst·in/out); bilinear is torch's
    `align_corners=False` (half-pixel centres, clamped at the border).
    """

    kind = "upsample"
    rule = "upsample"
    keywords = ("upsample",)
    usage = ("upsample [nearest|bilinear] F` or "
             "`upsample [nearest|bilinear] to HxW|input|branch")
    foreign = {"interpolate": "upsample bilinear to HxW", "resize": "upsample bilinear to HxW"}
    MODES = ("nearest", "bilinear")
    saves = ()   # the backward needs only the sizes
    #: Per output value: nearest copies; bilinear weighs four neighbours (4 multiplies, 3 adds).
    FLOPS_PER_VALUE: ClassVar[dict[str, int]] = {"nearest": 0, "bilinear": 7}
    #: The words after `to` that size it like a value: the network's input, or what the
    #: branch it is in reads.
    TO_INPUT: ClassVar[str] = "input"
    TO_BRANCH: ClassVar[str] = "branch"

    def window(self) -> None:
        """None: output pixels read input pixels a fraction of a pixel apart."""
        return None

    def flops(self) -> int:
        return self.FLOPS_PER_VALUE[self.mode] * prod(self.output_shape)

    def explain(self) -> list[str]:
        (h, w), (oh, ow) = self.input_shape[:2], self.output_shape[:2]
        how = (f"×{self.factor[0]}, ×{self.factor[1]}" if self.factor else
               f"to {self.target}'s H×W" if self.target else "as written")
        return [f"out = {oh}×{ow}×{self.output_shape[2]} from {h}×{w} ({how}), {self.mode}",
                f"FLOPs = {self.FLOPS_PER_VALUE[self.mode]}·{prod(self.output_shape):,} "
                f"= {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, mode: str, factor: tuple[int, int] | None = None,
                 size: tuple[int, int] | None = None, target: str | None = None) -> None:
        super().__init__(pos, text)
        self.mode = mode
        self.factor = factor
        self.size = size
        self.target = target            # "input" or "branch": a size taken from a layer
        self.reference: Layer | None = None   # that layer, set by the builder

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        rest = list(r.words)
        mode = rest.pop(0).text if rest[0].type in ("NEAREST", "BILINEAR") else "nearest"
        last = rest[-1]
        where: dict[str, Pos] = {}
        factor = size = target = None
        if last.type == "SIZE":
            dims = r.size(last, (1, 2), "an upsampling factor" if len(rest) == 1 else
                          "an upsampling size")
            dims = (dims[0], dims[-1])
            if len(rest) == 1:
                factor, where["factor"] = dims, last.pos
            else:
                size, where["size"] = dims, last.pos
        else:
            target = last.text
        layer = cls(r.span(last), r.text(), mode, factor, size, target)
        layer.options = {k: p for k, p in where.items() if p is not None}
        return [layer]

    @classmethod
    def writes_forward(cls, stmt: LayerStmt) -> bool:
        return stmt.words[-1].type in ("INPUT", "BRANCH")

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        rest = list(r.words)
        mode = rest.pop(0).text if rest[0].type in ("NEAREST", "BILINEAR") else "nearest"
        corners = ", align_corners=False" if mode == "bilinear" else ""
        last = rest[-1]
        if last.type != "SIZE":   # `to input` or `to branch`: that value's size, in forward
            ref = t.reference(last.text)
            t.forward(f"x = nn.functional.interpolate(x, size=[{ref}.shape[2], "
                      f"{ref}.shape[3]], mode={mode!r}{corners})")
            t.keeps_size(E.Num(0))
            return None
        dims = [E.const(e) for e in r.size(last, (1, 2), "an upsampling size")]
        if None in dims:
            t.unsupported("an upsampling by a parameter")
        if len(rest) == 1:
            fh, fw = dims[0], dims[-1]
            how = f"scale_factor={float(fh)!r}" if fh == fw else \
                f"scale_factor=({float(fh)!r}, {float(fw)!r})"
            t.keeps_size(E.Num(int(fh == 1 and fw == 1)))
        else:
            how = f"size=({dims[0]}, {dims[-1]})"
            t.keeps_size(E.Num(0))
        return f"nn.Upsample({how}, mode={mode!r}{corners})"

    def check_options(self, rep: Reporter) -> None:
        for label, dims in (("factor", self.factor), ("size", self.size)):
            for v in dims or ():
                self._positive(rep, label, f"upsampling {label}", v)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep):
            return None
        if self.factor is not None:
            if min(self.factor) < 1:
                return None
            hw = (shape[0] * self.factor[0], shape[1] * self.factor[1])
        elif self.size is not None:
            if min(self.size) < 1:
                return None
            hw = self.size
        else:
            ref = self.reference
            if ref is None or ref.output_shape is None:
                return None
            if len(ref.output_shape) != 3:
                rep.error(self.pos, f"`to {self.target}` needs a volume, but `{ref.name}` is a "
                                    f"vector of {shape_str(ref.output_shape)} values", ShapeError)
                return None
            hw = ref.output_shape[:2]
        self.output_shape = (hw[0], hw[1], shape[2])
        return self.output_shape

    def attrs(self) -> dict:
        return {"mode": self.mode, "size": list(self.output_shape[:2]),
                "factor": list(self.factor) if self.factor else None, "target": self.target}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .resample_numpy import upsample_step
        return upsample_step(self)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import resample, steps
        size = self.output_shape[:2]
        return steps.unary(lambda x: resample.upsample_forward(x, size, self.mode),
                           resample.upsample_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Resize to the size netspec decided: the batch and channels from x's shape, H×W fixed."""
        x, n = inputs[0], self.name
        batch_channels = g.node(self, "Slice", [
            g.node(self, "Shape", [x], f"{n}.in_shape", name=f"{n}.in_shape"),
            g.int64s(self, f"{n}.start", [0]), g.int64s(self, f"{n}.stop", [2])],
            f"{n}.batch_channels", name=f"{n}.batch_channels")
        sizes = g.node(self, "Concat", [batch_channels, g.int64s(
            self, f"{n}.hw", list(self.output_shape[:2]))], f"{n}.sizes", name=f"{n}.sizes",
            axis=0)
        if self.mode == "nearest":
            attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                     "nearest_mode": "floor"}
        else:
            attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
        return g.node(self, "Resize", [x, "", "", sizes], n, **attrs)

    onnx_ops = ("Resize",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Resize over H×W: `nearest` (asymmetric, floor: torch's `mode='nearest'`) or
        `bilinear` (half_pixel: torch's `align_corners=False`), sized as the exporter wrote it.

        `scales` (`scale_factor=2`) give a whole factor, or a size when the output is exactly
        the input times the scale (ONNX samples at the scale, netspec at output/input: they
        agree only then). `sizes` computed from a value's shape (`size=low.shape[-2:]`) give
        `to input` for the graph input; for another value, `to HxW` here, which the spec
        writer turns into `to branch` where that value is what the enclosing branch reads.
        Constant `sizes` give `to HxW`. A model netspec wrote says which in its doc_strings.
        """
        a = r.attrs(node)
        x, out = r.shape(node.input[0]), r.shape(node.output[0])
        mode = a.get("mode", "nearest")
        transform = a.get("coordinate_transformation_mode", "half_pixel")
        if mode == "nearest" and transform == "asymmetric" and \
                a.get("nearest_mode", "round_prefer_floor") == "floor":
            how = "nearest"
        elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
            how = "bilinear"
        else:
            r.fail(f"Resize with mode {mode} and {transform} coordinates: netspec upsamples "
                   f"nearest (asymmetric, floor) or bilinear (half_pixel)",
                   hint="torch's F.interpolate(mode='nearest') or (mode='bilinear', "
                        "align_corners=False)")
        if int(a.get("antialias", 0)):
            r.fail("Resize with antialias: netspec's upsample samples without a filter")
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            r.fail(f"Resize keeping the aspect ratio ({a['keep_aspect_ratio_policy']}): "
                   f"netspec stretches to the size")
        if len(x) != 4 or tuple(out[:2]) != tuple(x[:2]) and out[0] != "N":
            r.fail("Resize over other axes than height and width")
        (h, w), (oh, ow) = x[2:], out[2:]
        if transform == "pytorch_half_pixel" and (oh == 1 < h or ow == 1 < w):
            r.fail("Resize with pytorch_half_pixel coordinates to a size of 1 samples the "
                   "first pixel, not the centre as netspec's bilinear (torch's "
                   "align_corners=False)")
        words = [cls.keywords[0], how]
        scales = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        sizes = node.input[3] if len(node.input) > 3 and node.input[3] else ""
        size_of = None
        text = r.statement(node)
        if text:
            target = next((t for t in (cls.TO_INPUT, cls.TO_BRANCH)
                           if text.endswith(f" to {t}")), None)
            if target is not None:
                words += ["to", target]
            elif oh % h == 0 and ow % w == 0 and " to " not in text:
                words.append(_factor(oh // h, ow // w))
            else:
                words += ["to", f"{oh}x{ow}"]
        elif sizes:
            size_of = r.size_of(sizes)
            words += ["to", cls.TO_INPUT if size_of == r.input_name else f"{oh}x{ow}"]
        elif scales:
            factors = [float(v) for v in r.array(scales).reshape(-1)][-2:]
            if len(factors) != 2 or h * factors[0] != oh or w * factors[1] != ow:
                r.fail(f"Resize by scales {factors} from {h}×{w} to {oh}×{ow}: ONNX samples at "
                       f"the scale, netspec at output/input size, which differ here",
                       hint="netspec reads whole factors, or scales that give an exact size")
            whole = all(f == int(f) for f in factors)
            words += [_factor(int(factors[0]), int(factors[1]))] if whole else \
                ["to", f"{oh}x{ow}"]
        else:
            r.fail("Resize with neither scales nor sizes")
        layer = r.emit(node, cls, words, [node.input[0]])
        if size_of is not None and size_of != r.input_name:
            layer.size_of = size_of
        return None


def _factor(fh: int, fw: int) -> str:
    """`2`, or `2x3` when the factors along H and W differ."""
    return f"{fh}" if fh == fw else f"{fh}x{fw}"
