"""Normalisation: batch norm (per channel) and local response norm (across channels)."""

from __future__ import annotations

import math
from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError, SpecError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class BatchNorm(Layer):
    """`bn [epsE]`: per-channel scale and shift (2·C trainable), plus running statistics.

    y = (x − mean)/√(var + ε)·scale + shift, ε 1e-5 (torch's default) unless written
    (`bn eps1e-3`, as torchvision's Inception, GoogLeNet, MobileNetV3, EfficientNet).
    """

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


class LRN(Layer):
    """`lrn N`: x / (k + α/N · Σ x²)^β over N neighbouring channels (AlexNet, 2012)."""

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
