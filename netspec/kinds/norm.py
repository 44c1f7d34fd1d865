"""Normalisation: batch norm (per channel), local response norm (across channels) and layer
norm (over the channels of each pixel, as ConvNeXt's)."""

from __future__ import annotations

import math
from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError, SpecError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class BatchNorm(Layer):
    """`bn [epsE]`: per-channel scale and shift (2·C trainable), plus running statistics.

    y = (x − mean)/√(var + ε)·scale + shift, ε 1e-5 (torch's default) unless written
    (`bn eps1e-3`, as torchvision's Inception, GoogLeNet, MobileNetV3, EfficientNet).
    """

    joins_line = True
    kind = "bn"
    draw_colour = "#fff2b3"
    rule = "bn"
    keywords = ("bn",)
    usage = "bn [epsE], e.g. `bn eps1e-3`"
    foreign = {"batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn"}
    EPSILON: ClassVar[float] = 1e-5
    pointwise = True
    buffers = ("running_mean", "running_var")
    saves = ("input",)   # and, per channel, the batch's mean and 1/std

    def saved_extra_bytes(self) -> int:
        return 2 * 4 * self.output_shape[-1]

    def flops(self) -> int:
        """Inference folds it into a scale and a shift: two per value."""
        return 2 * prod(self.output_shape)

    def explain(self) -> list[str]:
        c = self.output_shape[-1]
        return [f"out = in = {shape_str(self.output_shape)}",
                f"params = 2·{c} = {self.params:,} (+ 2·{c} running statistics, not trained)",
                f"FLOPs = 2·{prod(self.output_shape):,} = {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, eps: float | None = None) -> None:
        super().__init__(pos, text)
        self.eps = self.EPSILON if eps is None else eps

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        eps = r.words[0] if r.words else None
        layer = cls(r.span(), r.text(), eps.number if eps else None)
        layer.options = {"eps": eps.pos} if eps else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        eps = r.words[0].number if r.words else cls.EPSILON
        eps_arg = "" if eps == cls.EPSILON else f", eps={eps!r}"
        return f"nn.BatchNorm{'1' if t.vector else '2'}d({t.py(t.c_in)}{eps_arg})"

    def check_options(self, rep: Reporter) -> None:
        if not self.eps > 0:
            rep.error(self.where("eps"), f"batch-norm epsilon must be positive, not {self.eps:g}",
                      ShapeError, hint="torch's default is `eps1e-5`; torchvision also uses "
                                       "`eps1e-3`")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = self.output_shape = shape
        self.params = 2 * shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = (self.output_shape[-1],)
        return {"weight": c, "bias": c, "running_mean": c, "running_var": c}

    def attrs(self) -> dict:
        return {"eps": self.eps}

    # ---- backends ------------------------------------------------------------------------
    fuses_activation = True
    numpy_in_place = True
    per_channel_affine = True

    def affine(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """At inference: x·scale + shift, per channel."""
        import numpy as np
        scale = (w["weight"] / np.sqrt(w["running_var"] + np.float32(self.eps))).astype(np.float32)
        return scale, (w["bias"] - w["running_mean"] * scale).astype(np.float32)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        scale, shift = self.affine(w)

        def bn(x: np.ndarray, act: object = None) -> np.ndarray:
            x *= scale   # in place: the model copies a value another layer still reads
            x += shift
            return x if act is None else act(x)
        return bn

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """In training, the batch's statistics, and `update` moves the running ones toward
        them as torch does (momentum 0.1, unbiased variance); otherwise the running ones."""
        from ..numerics.backward import norm, steps
        weight, bias, mean, var = (w[k] for k in ("weight", "bias", "running_mean",
                                                  "running_var"))
        return steps.unary(
            lambda x: norm.batch_norm_forward(x, weight, bias, mean, var, self.eps, training),
            norm.batch_norm_backward,
            (lambda cache: norm.batch_norm_update_running(mean, var, cache)) if training else None)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        weights = [g.weight(self, s) for s in ("weight", "bias", "running_mean", "running_var")]
        return g.node(self, "BatchNormalization", [inputs[0], *weights], self.name,
                      epsilon=self.eps)

    onnx_ops = ("BatchNormalization",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        eps = float(r.attrs(node).get("epsilon", 1e-5))
        if not eps > 0:
            r.fail(f"batch norm epsilon {eps:g}: it must be positive")
        if len(node.output) > 1 and any(r.uses(o) for o in node.output[1:]):
            r.fail("batch norm in training mode (its running statistics are read): netspec "
                   "reads the inference graph", hint="export the model in eval() mode")
        weights = {suffix: r.lazy(name) for suffix, name in
                   zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5])}
        words = [cls.keywords[0]] + ([] if abs(eps - cls.EPSILON) <= 1e-12 else
                                     [f"eps{r.short(eps)}"])
        r.emit(node, cls, words, [node.input[0]], weights)
        return None


class LRN(Layer):
    """`lrn N`: x / (k + α/N · Σ x²)^β over N neighbouring channels (AlexNet, 2012)."""

    joins_line = True
    kind = "lrn"
    draw_colour = "#fff2b3"
    rule = "lrn"
    keywords = ("lrn",)
    usage = "lrn N [aALPHA] [bBETA] [kK]"
    pointwise = True   # across channels, never across pixels
    saves = ("input",)

    def saved_extra_bytes(self) -> int:
        """PyTorch's composite LRN keeps two more volumes and the channel-padded squares."""
        h, w, c = self.output_shape
        return 4 * h * w * (2 * c + c + self.size - 1)

    def flops(self) -> int:
        """Per value: N squares and N − 1 adds for the window, then ·α/N, + k, ^β and ÷."""
        return (2 * self.size + 3) * prod(self.output_shape)

    def explain(self) -> list[str]:
        n = prod(self.output_shape)
        return [f"out = in = {shape_str(self.output_shape)}",
                f"FLOPs = (2·{self.size} + 3)·{n:,} = {self.flops():,}"]

    def __init__(self, pos: Pos, text: str, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__(pos, text)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size, *opts = r.words
        values: dict[str, float] = {}
        where: dict[str, Pos | None] = {"size": size.pos}
        for w in opts:
            key = {"a": "alpha", "b": "beta", "k": "k"}[w.text[0]]
            if key in values:
                r.rep.error(w.pos, f"{key} given twice in `lrn`", SpecError)
            values[key] = w.number
            where[key] = w.pos
        layer = cls(r.span(), r.text(), r.size(size, (1,), "the size of `lrn`")[0], **values)
        layer.options = {k: p for k, p in where.items() if p is not None}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        size, *opts = r.words
        values = {"alpha": 1e-4, "beta": 0.75, "k": 1.0}
        values.update({{"a": "alpha", "b": "beta", "k": "k"}[w.text[0]]: w.number for w in opts})
        return (f"nn.LocalResponseNorm({t.py(r.number(size))}, alpha={values['alpha']!r}, "
                f"beta={values['beta']!r}, k={values['k']!r})")

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "size", "lrn size", self.size)
        for option, value, least, strict in (("alpha", self.alpha, 0.0, False),
                                             ("beta", self.beta, 0.0, False),
                                             ("k", self.k, 0.0, True)):
            if not math.isfinite(value) or value < least or (strict and value == least):
                rep.error(self.where(option), f"lrn {option} must be a finite number "
                                              f"{'>' if strict else '≥'} 0, not {value:g}",
                          ShapeError, hint="the defaults are a0.0001 b0.75 k1"
                          if option != "k" else "k keeps the divisor above 0; the default is k1")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.size < 1:
            return None
        self.output_shape = shape
        return shape

    def attrs(self) -> dict:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    # ---- backends ------------------------------------------------------------------------
    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """ONNX's LRN: the window over channels c − ⌊(n−1)/2⌋ … c + ⌈(n−1)/2⌉."""
        import numpy as np
        n = self.size
        before, after = (n - 1) // 2, n - 1 - (n - 1) // 2
        scale, k, beta = np.float32(self.alpha / n), np.float32(self.k), np.float32(self.beta)

        def lrn(x: np.ndarray) -> np.ndarray:
            c = x.shape[-1]
            sq = np.zeros((*x.shape[:-1], c + 1), np.float32)
            np.cumsum(x * x, axis=-1, out=sq[..., 1:])
            idx = np.arange(c)
            hi, lo = np.minimum(idx + after + 1, c), np.maximum(idx - before, 0)
            window = sq[..., hi] - sq[..., lo]
            return x / (k + scale * window) ** beta
        return lrn

    def numpy_scratch(self, batch: int) -> int:
        """The squares, their cumulative sums (one channel more), the window's gather and a
        ufunc buffer."""
        out = 4 * batch * prod(self.output_shape)
        return out + out // self.output_shape[-1] + 2 * out + min(8192 * 4, out)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import norm, steps
        return steps.unary(lambda x: norm.lrn_forward(x, self.size, self.alpha, self.beta,
                                                      self.k), norm.lrn_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "LRN", [inputs[0]], self.name, size=self.size, alpha=self.alpha,
                      beta=self.beta, bias=self.k)

    onnx_ops = ("LRN",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        a = r.attrs(node)
        words = [cls.keywords[0], str(a["size"]), f"a{a.get('alpha', 1e-4):g}",
                 f"b{a.get('beta', 0.75):g}", f"k{a.get('bias', 1.0):g}"]
        r.emit(node, cls, words, [node.input[0]])
        return None


#: The module the generated PyTorch code defines for a layer norm of a volume: torch's
#: own, applied to each pixel's channels (channels last).
LAYER_NORM_2D = '''class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each pixel (as torchvision's ConvNeXt LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)'''


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

    onnx_ops = ("LayerNormalization", "Transpose")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """LayerNormalization over the channels: of a vector, or of a volume whose channels
        were moved last (Transpose, LayerNormalization, Transpose back)."""
        steps = r.pending("layernorm")   # value → ("nhwc", volume) or ("normed", node, volume)
        x = r.resolve(node.input[0])
        if node.op_type == "Transpose":
            perm = list(r.attrs(node).get("perm", []))
            if perm == [0, 2, 3, 1] and not r.const(x) and len(r.shape(x)) == 4:
                steps[node.output[0]] = ("nhwc", x)   # may also be another kind's step
                return None
            step = steps.get(x)
            if perm == [0, 3, 1, 2] and step is not None and step[0] == "normed":
                cls._emit(r, step[1], step[2], node.output[0])
                return None
            return "a layer norm over the channels of a volume (Transpose, " \
                   "LayerNormalization, Transpose back)"
        a = r.attrs(node)
        rank = len(r.shape(x))
        nhwc = steps.get(x, ("",))
        if a.get("axis", -1) % rank != rank - 1 or rank == 4 and nhwc[0] != "nhwc" or \
                rank not in (2, 4):
            r.fail("LayerNormalization is read over the channels only (of a vector, or of a "
                   "volume transposed to N×H×W×C and back)")
        if len(node.input) < 3 or not node.input[2]:
            r.fail("LayerNormalization without a bias: netspec's layernorm has one")
        if rank == 4:
            steps[node.output[0]] = ("normed", node, nhwc[1])
        else:
            cls._emit(r, node, x, node.output[0])
        return None

    @classmethod
    def _emit(cls, r: OnnxReader, node: onnx.NodeProto, x: str, out: str) -> None:
        eps = float(f"{float(r.attrs(node).get('epsilon', 1e-5)):.6g}")   # stored as float32
        words = [cls.keywords[0]] + ([f"eps{r.short(eps)}"] if eps != cls.DEFAULT_EPSILON
                                     else [])
        weights = {suffix: r.lazy(name) for suffix, name in zip(("weight", "bias"),
                                                                node.input[1:3])}
        r.emit(node, cls, words, [x], weights, out=out)

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
