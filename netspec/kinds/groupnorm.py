"""Group norm (torch's nn.GroupNorm): each sample's C channels in G groups, each group
normalised over its C/G channels and every pixel, then scaled and shifted per channel
(BiT, resnet50_gn, PoolFormer's one-group norm).

Unlike batch norm at inference, its statistics are computed from the sample itself, so
an output pixel depends on every pixel of its input: the receptive field grows to the
whole input at a group norm (`input_reads`), as it does at a squeeze-and-excitation gate.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, ClassVar

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import AxisWindow, Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class GroupNorm(Layer):
    """`groupnorm G [epsE]`: y = (x − μ)/√(σ² + ε)·weight + bias, μ and σ² (biased) over
    each sample's group of C/G channels × H × W values; 2·C parameters, ε 1e-5 unless
    written, as torch's GroupNorm(G, C)."""

    joins_line = True
    kind = "groupnorm"
    draw_colour = "#fff2b3"
    rule = "groupnorm"
    keywords = ("groupnorm",)
    usage = "groupnorm G [epsE], e.g. `groupnorm 32`"
    foreign = {"group_norm": "groupnorm G", "gn": "groupnorm G", "groupnormact": "groupnorm G"}
    EPSILON: ClassVar[float] = 1e-5
    saves = ("input",)   # and, per sample and group, the mean and 1/std
    #: Per value, as layer norm: an add for the mean, subtract it, square and add for the
    #: variance, multiply by 1/std, scale, shift.
    FLOPS_PER_VALUE = 7

    def __init__(self, pos: Pos, text: str, groups: int, eps: float | None = None) -> None:
        super().__init__(pos, text)
        self.groups = groups
        self.eps = self.EPSILON if eps is None else eps

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        groups, *rest = r.words
        layer = cls(r.span(), r.text(), r.number(groups), rest[0].number if rest else None)
        layer.options = {"groups": groups.pos} | ({"eps": rest[0].pos} if rest else {})
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        groups, *rest = r.words
        eps = rest[0].number if rest else cls.EPSILON
        eps_arg = "" if eps == cls.EPSILON else f", eps={eps!r}"
        return f"nn.GroupNorm({t.py(r.number(groups))}, {t.py(t.c_in)}{eps_arg})"

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "groups", "groups", self.groups)
        if not self.eps > 0:
            rep.error(self.where("eps"), f"group-norm epsilon must be positive, not {self.eps:g}",
                      ShapeError, hint="torch's default is `eps1e-5`")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if self.groups < 1:
            return None
        if shape[-1] % self.groups:
            rep.error(self.where("groups"), f"{self.groups} groups do not divide the "
                                            f"{shape[-1]} channels", ShapeError,
                      notes=(f"the input to `{self.name}` is {shape_str(shape)}",),
                      hint=f"use a divisor of {shape[-1]}; `groupnorm 1` normalises all the "
                           f"channels together")
            return None
        self.output_shape = shape
        self.params = 2 * shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = (self.output_shape[-1],)
        return {"weight": c, "bias": c}

    def attrs(self) -> dict:
        return {"groups": self.groups, "eps": self.eps}

    # ---- facts for the analyses ---------------------------------------------------------
    def window(self) -> tuple[AxisWindow, AxisWindow] | None:
        return (1, 1, 0), (1, 1, 0)

    def input_reads(self) -> list[tuple[Layer, tuple[AxisWindow, AxisWindow] | None]]:
        """Its own pixel, and the whole H×W for the statistics: a window as large as the
        input, read alike by every output pixel (stride 0)."""
        x = self.inputs[0]
        if len(self.input_shape) != 3:
            return [(x, self.window())]
        h, w, _ = self.input_shape
        return [(x, self.window()), (x, ((h, 0, 0), (w, 0, 0)))]

    def saved_extra_bytes(self) -> int:
        return 2 * 4 * self.groups

    def flops(self) -> int:
        return self.FLOPS_PER_VALUE * prod(self.output_shape)

    def explain(self) -> list[str]:
        c, n = self.output_shape[-1], prod(self.output_shape)
        pixels = "" if len(self.output_shape) == 1 else \
            f" × {self.output_shape[0]}·{self.output_shape[1]} pixels"
        groups = f"{self.groups} group{'s' if self.groups > 1 else ''}"
        return [f"out = in = {shape_str(self.output_shape)}, normalised in {groups} of "
                f"{c // self.groups} channels{pixels} each, ε = {self.eps:g}",
                f"params = 2·{c} = {self.params:,}",
                f"FLOPs = {self.FLOPS_PER_VALUE}·{n:,} = {self.flops():,}"]

    # ---- backends -----------------------------------------------------------------------
    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """Per sample: each channel's mean m in float32 (a BLAS sum over the pixels), the
        values less it, d = x − m, written into the output, and d's sums and sums of squares
        per channel (small numbers: float32 keeps their digits however large the mean); from
        those, in float64, each group's mean μ and 1/std; then y = d·a + ((m − μ)·a + bias),
        a = weight/std per channel. Six passes over the sample, none in float64 (summing the
        values themselves in float64, or as E[x²] − E[x]², was slower, or lost digits)."""
        import numpy as np

        from ..numerics.threads import each
        weight, bias = w["weight"].astype(np.float64), w["bias"].astype(np.float64)
        g, eps = self.groups, self.eps

        def groupnorm(x: np.ndarray) -> np.ndarray:
            c = x.shape[-1]
            out = np.empty(x.shape, np.float32)
            pixels = x[0].size // c
            ones = np.ones(pixels, np.float32)
            count = pixels * (c // g)

            def sample(n: int) -> None:
                rows, d = x[n].reshape(-1, c), out[n].reshape(-1, c)
                m = ones @ rows
                m /= np.float32(pixels)
                np.subtract(rows, m, out=d)
                s1 = (ones @ d).astype(np.float64)
                s2 = np.einsum("pc,pc->c", d, d).astype(np.float64)
                m64 = m.astype(np.float64)
                mu = (s1 + pixels * m64).reshape(g, -1).sum(axis=1) / count
                off = m64 - np.repeat(mu, c // g)   # each channel's mean less its group's
                var = (s2 + 2 * off * s1 + pixels * off * off).reshape(g, -1).sum(axis=1) / count
                a = weight * np.repeat(1 / np.sqrt(var + eps), c // g)
                d *= a.astype(np.float32)
                d += (off * a + bias).astype(np.float32)
            each(sample, range(x.shape[0]))
            return out
        return groupnorm

    def numpy_scratch(self, batch: int) -> int:
        """A row of ones, and per channel a few sums (float32 and float64)."""
        h_w = prod(self.input_shape[:-1])
        return 4 * h_w + 8 * 8 * self.input_shape[-1]

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """torch's group_norm and its backward (netspec.numerics.backward.norm): the same in
        training and at inference (it has no running statistics)."""
        from ..numerics.backward import norm, steps
        weight, bias = w["weight"], w["bias"]
        return steps.unary(lambda x: norm.group_norm_forward(x, self.groups, weight, bias,
                                                             self.eps),
                           norm.group_norm_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """GroupNormalization from opset 21 (whose scale and bias are per channel; opsets 18
        to 20 had them per group); before, and for a vector, what torch's exporter writes:
        reshape to N×G×(the rest), InstanceNormalization, reshape back, Mul, Add."""
        x, n = inputs[0], self.name
        if g.opset >= 21 and len(self.input_shape) == 3:
            return g.node(self, "GroupNormalization",
                          [x, g.weight(self, "weight"), g.weight(self, "bias")], n,
                          epsilon=self.eps, num_groups=self.groups)
        c, grp = self.input_shape[-1], self.groups
        grouped = g.node(self, "Reshape", [x, g.int64s(self, f"{n}.grouped_shape", [0, grp, -1])],
                         f"{n}.grouped", name=f"{n}.grouped")
        normed = g.node(self, "InstanceNormalization",
                        [grouped, g.constant(f"{n}.ones", [1.0] * grp),
                         g.constant(f"{n}.zeros", [0.0] * grp)],
                        f"{n}.normed", name=f"{n}.normed", epsilon=self.eps)
        back_shape = [0, c, *self.input_shape[:2]] if len(self.input_shape) == 3 else [0, c]
        back = g.node(self, "Reshape", [normed, g.int64s(self, f"{n}.shape", back_shape)],
                      f"{n}.back", name=f"{n}.back")
        affine = (c, 1, 1) if len(self.input_shape) == 3 else (c,)
        scaled = g.node(self, "Mul", [back, g.weight(self, "weight", affine)], f"{n}.scaled",
                        name=f"{n}.scaled")
        for value in (back, scaled):
            g.record(value, self.input_shape)
        return g.node(self, "Add", [scaled, g.weight(self, "bias", affine)], n)

    onnx_ops = ("GroupNormalization", "Reshape", "InstanceNormalization", "Mul", "Add")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """GroupNormalization (its scale per group before opset 21, per channel from 21), or
        the five steps of `onnx` before opset 21, each remembered by the value it made."""
        if node.op_type == "GroupNormalization":
            return cls._read_group_normalization(r, node)
        steps = r.pending("groupnorm")   # value → (step, x, G, ε, weight)
        why = "group norm (reshape to N×G×…, InstanceNormalization, reshape back, Mul, Add)"
        flowing = [r.resolve(i) for i in node.input if i and not r.const(i)]
        const = [i for i in node.input[1:] if i and r.const(i)]
        step = steps.get(flowing[0]) if flowing else None
        out = node.output[0]
        if node.op_type == "Reshape" and step is None and flowing:
            x, shape = r.shape(flowing[0]), tuple(r.shapes.get(out, ()))
            then = [n.op_type for n in r.consumers(out)]
            if len(x) in (2, 4) and len(shape) == 3 and isinstance(shape[1], int) and \
                    x[1] % shape[1] == 0 and then == ["InstanceNormalization"]:
                steps[out] = ("grouped", flowing[0], shape[1], None, None)
                return None
        elif node.op_type == "InstanceNormalization" and step and step[0] == "grouped":
            import numpy as np
            if not (np.all(r.array(node.input[1]) == 1) and np.all(r.array(node.input[2]) == 0)):
                return why + ", its InstanceNormalization without a scale or shift"
            eps = float(f"{float(r.attrs(node).get('epsilon', 1e-5)):.6g}")   # stored as float32
            steps[out] = ("normed", step[1], step[2], eps, None)
            return None
        elif node.op_type == "Reshape" and step and step[0] == "normed" and \
                tuple(r.shapes.get(out, ())) == tuple(r.shape(step[1])):
            steps[out] = ("back", *step[1:])
            return None
        elif node.op_type == "Mul" and step and step[0] == "back" and len(const) == 1 and \
                prod(r.dims(const[0])) == r.shape(step[1])[1]:
            steps[out] = ("scaled", *step[1:4], const[0])
            return None
        elif node.op_type == "Add" and step and step[0] == "scaled" and len(const) == 1 and \
                prod(r.dims(const[0])) == r.shape(step[1])[1]:
            cls._emit(r, node, step[1], step[2], step[3], step[4], const[0])
            return None
        return why

    @classmethod
    def _read_group_normalization(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        a = r.attrs(node)
        groups = int(a["num_groups"])
        x = r.resolve(node.input[0])
        c = r.shape(x)[1]
        per_group = r.opset < 21   # opsets 18 to 20: one scale and bias per group
        if per_group and groups != c:
            def spread(v: Any) -> Any:
                return v.reshape(-1).repeat(c // groups)
        else:
            def spread(v: Any) -> Any:
                return v.reshape(-1)
        eps = float(f"{float(a.get('epsilon', 1e-5)):.6g}")
        words = [cls.keywords[0], r.num("", groups, None, "g")] + \
            ([] if abs(eps - cls.EPSILON) <= 1e-12 else [f"eps{r.short(eps)}"])
        r.emit(node, cls, words, [x], {"weight": r.lazy(node.input[1], spread),
                                       "bias": r.lazy(node.input[2], spread)})
        return None

    @classmethod
    def _emit(cls, r: OnnxReader, node: onnx.NodeProto, x: str, groups: int, eps: float,
              weight: str, bias: str) -> None:
        words = [cls.keywords[0], r.num("", groups, None, "g")] + \
            ([] if abs(eps - cls.EPSILON) <= 1e-12 else [f"eps{r.short(eps)}"])
        r.emit(node, cls, words, [x], {"weight": r.lazy(weight, lambda v: v.reshape(-1)),
                                       "bias": r.lazy(bias, lambda v: v.reshape(-1))})
