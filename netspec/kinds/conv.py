"""Convolution: K filters of depth C_in/groups slid over the input."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError, SpecError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter
from . import stdconv
from .stdconv import Standardised
from .window import OPTION_SPELLINGS, _Windowed, onnx_pads

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class Conv(_Windowed):
    """`conv FxF [sN] [pN|same|valid] [dN] [gN] xK [ws [gain] [gammaG] [epsE]]`: K filters
    of depth C_in/groups, weight-standardised with `ws` (kinds/stdconv.py)."""

    kind = "conv"
    draw_colour = "#8ec9f0"
    rule = "conv"
    keywords = ("conv",)
    usage = "conv FxF [sN] [pN|same|valid] [dN] [gN] [nobias] xK [ws [gain] [gammaG] [epsE]] " \
            "[ACTIVATION]"
    foreign = {"conv2d": "conv", "convolution": "conv"}
    option_spellings = (*OPTION_SPELLINGS,
                        (r"(?:filters|k|out|channels)=?(-?\d+)$", "x{}", "the filter count"),
                        (r"(-?\d+)$", "x{}", "a filter count"))
    #: Words that may follow `conv`, for a near miss (`conv 3x3 x8 wz`).
    option_words = ("ws", "gain")
    GROUPS_HINT: ClassVar[str] = "groups must divide both the input channels and the filters"

    def __init__(self, pos: Pos, text: str, kernel: tuple[int, int], depth: int | None,
                 filters: int | None, stride: int | None, padding: int | str,
                 dilation: int, groups: int, bias: bool = True,
                 ws: Standardised | None = None) -> None:
        super().__init__(pos, text, kernel, stride, padding, dilation)
        self.depth = depth
        self.filters = filters
        self.groups = groups
        self.bias = bias
        self.ws = ws   # weight standardisation (`ws`), or None
        self.in_channels = 0

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size, *rest = r.words
        opts = r.options(rest)
        kernel, depth = r.kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        layer = cls(r.span(), r.text(), kernel, depth, get("filters", None), get("stride", None),
                    get("padding", 0), get("dilation", 1), get("groups", 1),
                    bias=not get("nobias", False), ws=Standardised.of(opts))
        return r.finish(layer, opts, {"kernel": size.pos})

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        size, *rest = r.words
        opts = r.options(rest)
        kernel, _ = r.kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        k = get("filters", None)
        args = [t.py(t.c_in), t.py(k), t.py(kernel)]
        window = cls.torch_window(t, kernel, get("stride", None), get("padding", E.Num(0)),
                                  get("dilation", E.Num(1)), (E.Num(1),), conv=True)
        if window:
            args.append(window)
        groups = get("groups", E.Num(1))
        if t.py(groups) != "1":
            args.append(f"groups={t.py(groups)}")
        if get("nobias", False):
            args.append("bias=False")
        t.out(k)
        in_forward = get("padding", None) == "same" and \
            cls.same_in_forward(t, kernel, get("stride", E.Num(1)), True)
        if "ws" in opts:
            return stdconv.torch_module(t, opts, args, in_forward)
        module = cls.torch_same_module(t, "Conv2dSame") if in_forward else "nn.Conv2d"
        return f"{module}({', '.join(args)})"

    # ---- backends ------------------------------------------------------------------------
    fuses_activation = True

    @property
    def folds_affine(self) -> bool:  # type: ignore[override]
        """A batch norm after it folds into its weight, unless the weight is standardised
        (a scale of the raw weight would be standardised away)."""
        return self.ws is None

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .conv_numpy import conv_step
        return conv_step(self, w if self.ws is None else stdconv.standardised(self, w))

    def numpy_scratch(self, batch: int) -> int:
        from .conv_numpy import scratch
        return scratch(self, batch)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """torch's conv2d and its backward (netspec.numerics.backward.conv); with `ws`, on
        the standardised weight, its gradient carried back through the standardisation
        (netspec.numerics.backward.standardise)."""
        from ..numerics.backward import conv, standardise, steps
        weight, bias, ws = w["weight"], w.get("bias"), self.ws
        if ws is None:
            return steps.weighted(lambda x: conv.conv2d_forward(
                x, weight, bias, self.strides, self.pads, self.dilation, self.groups),
                conv.conv2d_backward)
        scale = ws.scale(prod(weight.shape[1:]))

        def forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
            std, std_cache = standardise.standardise_forward(weight, ws.eps, w.get("gain"), scale)
            y, cache = conv.conv2d_forward(x, std, bias, self.strides, self.pads, self.dilation,
                                           self.groups)
            return y, (cache, std_cache)

        def backward(dy: np.ndarray, caches: tuple, need_dx: bool = True) -> tuple:
            dx, grads = conv.conv2d_backward(dy, caches[0], need_dx=need_dx)
            grads["weight"], dgain = standardise.standardise_backward(grads["weight"], caches[1])
            return dx, grads | ({"gain": dgain} if dgain is not None else {})
        return steps.weighted(forward, backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        weight = g.weight(self, "weight") if self.ws is None else stdconv.onnx_weight(self, g)
        weights = [weight] + ([g.weight(self, "bias")] if self.bias else [])
        return g.node(self, "Conv", [inputs[0], *weights], self.name,
                      kernel_shape=list(self.kernel), strides=list(self.strides),
                      pads=onnx_pads(self.pads), dilations=[self.dilation] * 2,
                      group=self.groups)

    onnx_ops = ("Conv", "Reshape", "InstanceNormalization", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """A Conv, its weight an initializer or standardised in the graph (`ws`: the nodes
        before it read by kinds/stdconv.py)."""
        if node.op_type != "Conv":
            return stdconv.read_step(r, node)
        written = r.statement(node).split(" ", 1)[0]
        if written and written not in cls.keywords:   # netspec's `linear` is a 1×1 Conv
            return "a convolution (this one netspec exported from another statement)"
        a = r.attrs(node)
        x, w = node.input[0], node.input[1]
        if not r.computed(x):   # a step of another kind's pattern (blur's reflect padding)
            return "a convolution of a value a layer computes"
        standardised = stdconv.read_weight(r, node, w)
        if standardised is not None:
            w = standardised[0]
        k, _, *kernel = r.dims(w)
        if len(kernel) != 2:
            r.fail(f"a {len(kernel)}-D convolution: netspec convolves over height and width only")
        strides = list(a.get("strides", [1, 1]))
        dilation = r.square(list(a.get("dilations", [1, 1])), "dilation")
        stride = r.square(strides, "stride")
        words = [cls.keywords[0], f"{kernel[0]}x{kernel[1]}", r.num("s", stride, 1, "s"),
                 *r.padding(a, x, kernel, strides, dilation, False, node.output[0]),
                 r.num("d", dilation, 1, "d"), r.num("g", int(a.get("group", 1)), 1, "g")]
        weights = {"weight": r.lazy(w)}
        if len(node.input) > 2 and node.input[2]:
            weights["bias"] = r.lazy(node.input[2], lambda b: b.reshape(-1))
        else:
            words.append("nobias")
        words.append(r.num("x", k, None, "c"))
        if standardised is not None:
            words += standardised[1]
            weights |= standardised[2]
        r.emit(node, cls, words, [x], weights)
        return None

    def check_options(self, rep: Reporter) -> None:
        super().check_options(rep)
        stdconv.check(self, rep)
        if self.filters is None:
            rep.error(self.pos, "`conv` needs a filter count", SpecError,
                      hint=f"add `xK` for K filters, e.g. `{self.text} x16`")
        else:
            self._positive(rep, "filters", "filter count", self.filters)
        if self.depth is not None:
            self._positive(rep, "kernel", "filter depth", self.depth)
        if self._positive(rep, "groups", "groups", self.groups) and self.filters and \
                self.filters % self.groups:
            rep.error(self.where("groups"), f"groups {self.groups} does not divide the "
                                            f"{self.filters} filters", ShapeError,
                      hint=self.GROUPS_HINT)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or not self._valid_numbers():
            return None
        if self.filters is None or self.filters < 1 or self.groups < 1 or self.filters % self.groups:
            return None
        c_in, g, k = shape[2], self.groups, self.filters
        ok = True
        if self.depth is not None and self.depth != c_in // g:
            expected = c_in // g
            rep.error(self.where("kernel"),
                      f"filter depth {self.depth} does not match the input depth {c_in}"
                      + (f" / {g} groups = {expected}" if g > 1 else ""), ShapeError,
                      notes=(f"the input to `{self.name}` is {shape_str(shape)}",),
                      hint=f"write the kernel as {self.kernel[0]}x{self.kernel[1]}x{expected}, "
                           f"or leave the depth out")
            ok = False
        if c_in % g:
            rep.error(self.where("groups"), f"groups {g} does not divide the {c_in} input "
                                            f"channels", ShapeError, hint=self.GROUPS_HINT)
            ok = False
        spatial = self._spatial(shape, rep)
        if spatial is None or not ok:
            return None
        self.in_channels = c_in
        fan_in = self.kernel[0] * self.kernel[1] * (c_in // g)
        self.params = (fan_in + self.bias + (self.ws is not None and self.ws.gain)) * k
        self.macs = spatial[0] * spatial[1] * k * fan_in
        self.output_shape = (*spatial, k)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        shapes = {"weight": (self.filters, self.in_channels // self.groups, *self.kernel)}
        if self.bias:
            shapes["bias"] = (self.filters,)
        if self.ws is not None and self.ws.gain:   # after the bias, as timm registers it
            shapes["gain"] = (self.filters, 1, 1, 1)
        return shapes

    def saved_pass_bytes(self) -> int:
        """With `ws`, what autograd keeps of the standardisation (stdconv.saved_bytes)."""
        return stdconv.saved_bytes(self) if self.ws else 0

    def flops(self) -> int:
        """Two per multiply-add, plus one add per output value for the bias."""
        return 2 * self.macs + (prod(self.output_shape) if self.bias else 0)

    def explain(self) -> list[str]:
        fh, fw = self.kernel
        cg = self.in_channels // self.groups
        c = f"{self.in_channels}/{self.groups}" if self.groups > 1 else f"{self.in_channels}"
        oh, ow, k = self.output_shape
        params = (f"({fh}·{fw}·{c} + 1)·{k}" if self.bias else f"{fh}·{fw}·{c}·{k}")
        if self.ws is not None and self.ws.gain:
            params = f"({fh}·{fw}·{c} + {1 + self.bias})·{k}"
        ws = [] if self.ws is None else [
            self.ws.formula(fh * fw * cg) + " (once per forward, on the weights: not counted "
            "per sample)"]
        return [*self.explain_size(), *ws,
                f"params = {params} = {self.params:,}",
                f"MACs = {oh}·{ow}·{k}·{fh}·{fw}·{cg} = {self.macs:,}",
                "FLOPs = 2·MACs" + (f" + {oh}·{ow}·{k} (bias)" if self.bias else "")
                + f" = {self.flops():,}"]

    def attrs(self) -> dict:
        return {**super().attrs(), "filters": self.filters, "groups": self.groups,
                "bias": self.bias} | ({} if self.ws is None else {"ws": self.ws._asdict()})

    def filter_bank(self, weights: dict[str, np.ndarray]) -> np.ndarray | None:
        """Its weight as it convolves: K filters, each over the C_in/groups channels of its
        group (standardised, with `ws`)."""
        return weights["weight"] if self.ws is None else \
            stdconv.standardised(self, weights)["weight"]
