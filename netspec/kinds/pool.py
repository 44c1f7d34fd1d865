"""Pooling: max or average over windows, over the whole of H×W (global), or to a fixed H×W (adaptive)."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter, ShapeError, SpecError, SpecSyntaxError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import AxisWindow, Layer, Shape, shape_str
from ..syntax.tree import LayerStmt
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter
from .window import _Windowed, onnx_pads

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


class Pool(_Windowed):
    """`pool [max|avg] F [sN] [pN|same|valid] [ceil] [countpad]`: stride defaults to the window.

    An average divides by the input cells its window covers, or with `countpad`
    (torch's `count_include_pad=True`) by the cells of the window inside the
    padded input: the padding counts, what `ceil` adds past it does not.
    """

    kind = "pool"
    draw_kernel = "kern pool"
    draw_colour = "#f4a6a6"
    rule = "pool"
    keywords = ("pool",)
    usage = ("pool [max|avg] F [sN] [pN|same|valid] [ceil] [countpad]` or "
             "`pool [max|avg] global` or `pool avg to HxW")
    foreign = {"maxpool": "pool max", "max_pool": "pool max", "maxpool2d": "pool max",
               "avgpool": "pool avg", "avg_pool": "pool avg", "avgpool2d": "pool avg",
               "adaptiveavgpool2d": "pool avg to HxW", "adaptive_avg_pool": "pool avg to HxW",
               "gap": "pool avg global", "globalavgpool": "pool avg global"}
    #: Words that may follow `pool`, for a near miss (`pool 3 stride2`).
    option_words = ("max", "avg", "ceil", "global", "countpad", "to")

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        rest = list(r.words)
        mode = rest.pop(0).text if rest[0].type in ("MAX", "AVG") else "max"
        if rest[0].type == "TO":
            size = rest[1]
            adaptive = AdaptivePool(r.span(size), r.text(), mode,
                                    r.size(size, (1, 2), "the output size of `pool avg to`"))
            return r.finish(adaptive, {}, {"size": size.pos, "mode": r.words[0].pos})
        if rest[0].type == "GLOBAL":
            layer = cls(r.span(rest[0]), r.text(), mode, (1, 1), None, 0, global_pool=True)
            return r.finish(layer, {}, {})
        size, *opt_words = rest
        opts = r.options(opt_words)
        kernel, depth = r.kernel(size)
        if depth is not None:
            r.rep.error(size.pos, f"a pooling window has no depth: `{size.text}`",
                        SpecSyntaxError,
                        hint=f"write `{kernel[0]}x{kernel[1]}`; pooling keeps every channel")
        layer = cls(r.span(), r.text(), mode, kernel,
                    opts["stride"][1] if "stride" in opts else None,
                    opts["padding"][1] if "padding" in opts else 0,
                    ceil_mode="ceil" in opts, count_pad="countpad" in opts)
        return r.finish(layer, opts, {"kernel": size.pos})

    @classmethod
    def made_kind(cls, stmt: LayerStmt) -> str:
        return AdaptivePool.kind if any(w.type == "TO" for w in stmt.words) else cls.kind

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        rest = list(r.words)
        mode = rest.pop(0).text if rest[0].type in ("MAX", "AVG") else "max"
        if rest[0].type == "TO":
            if t.in_residual:
                t.unsupported("adaptive pooling inside a residual (whether it keeps H×W "
                              "depends on the input)")
            size = r.size(rest[1], (1, 2), "the output size of `pool avg to`")
            return f"nn.AdaptiveAvgPool2d({t.py((size[0], size[-1]))})"
        if rest[0].type == "GLOBAL":
            t.keeps_size(E.Num(0))
            return f"nn.Adaptive{'Max' if mode == 'max' else 'Avg'}Pool2d(1)"
        size, *opt_words = rest
        opts = r.options(opt_words)
        kernel, _ = r.kernel(size)
        args = [t.py(kernel)]
        stride = opts["stride"][1] if "stride" in opts else None
        padding = opts["padding"][1] if "padding" in opts else E.Num(0)
        window = cls.torch_window(t, kernel, stride, padding, E.Num(1), kernel)
        if padding == "same" and cls.same_in_forward(t, kernel, stride or kernel[0], False):
            step = t.py(stride if stride is not None else kernel)
            if mode == "max":
                return f"{cls.torch_same_module(t, 'MaxPool2dSame')}({t.py(kernel)}, {step})"
            counted = "" if "countpad" in opts else ", count_include_pad=False"
            return f"{cls.torch_same_module(t, 'AvgPool2dSame')}({t.py(kernel)}, {step}{counted})"
        if window:
            args.append(window)
        if "ceil" in opts:
            args.append("ceil_mode=True")
        if mode == "max":
            return f"nn.MaxPool2d({', '.join(args)})"
        return f"nn.AvgPool2d({', '.join(args)}, count_include_pad={'countpad' in opts})"

    # ---- backends ------------------------------------------------------------------------
    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .pool_numpy import pool_step
        return pool_step(self)

    def numpy_scratch(self, batch: int) -> int:
        from .pool_numpy import scratch
        return scratch(self, batch)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """torch's max_pool2d or avg_pool2d (a global one over the whole H×W) and its
        backward (netspec.numerics.backward.pool)."""
        from ..numerics.backward import pool, steps
        if self.global_pool:
            return steps.unary(*((pool.global_max_pool_forward, pool.global_max_pool_backward)
                                 if self.mode == "max" else
                                 (pool.global_avg_pool_forward, pool.global_avg_pool_backward)))
        if self.mode == "max":
            return steps.unary(lambda x: pool.max_pool2d_forward(
                x, self.kernel, self.strides, self.pads, self.ceil_mode), pool.max_pool2d_backward)
        return steps.unary(lambda x: pool.avg_pool2d_forward(
            x, self.kernel, self.strides, self.pads, self.ceil_mode, self.count_pad),
            pool.avg_pool2d_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x = inputs[0]
        if self.global_pool:
            return g.node(self, "GlobalMaxPool" if self.mode == "max" else "GlobalAveragePool",
                          [x], self.name)
        attrs = dict(kernel_shape=list(self.kernel), strides=list(self.strides),
                     pads=onnx_pads(self.floor_pads()))
        if self.mode == "max":
            return g.node(self, "MaxPool", [x], self.name, **attrs)
        if self.count_pad and self.floor_pads() == self.pads:
            return g.node(self, "AveragePool", [x], self.name, count_include_pad=1, **attrs)
        if self.count_pad:   # count the written padding but not the cells `ceil` adds past it
            (t, b), (left, r) = self.pads
            amounts = g.int64_initializer(f"{self.name}.pads", [0, 0, t, left, 0, 0, b, r])
            x = g.node(self, "Pad", [x, amounts], f"{self.name}.padded", name=f"{self.name}.pad")
            g.record(x, (self.input_shape[0] + t + b, self.input_shape[1] + left + r,
                         self.input_shape[2]))
            (_, fb), (_, fr) = self.floor_pads()
            attrs["pads"] = [0, 0, max(0, fb - b), max(0, fr - r)]
        return g.node(self, "AveragePool", [x], self.name, count_include_pad=0, **attrs)

    onnx_ops = ("MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        mode = "max" if "Max" in node.op_type else "avg"
        if node.op_type.startswith("Global"):
            r.emit(node, cls, [cls.keywords[0], mode, "global"], [node.input[0]])
            return None
        if " to " in r.statement(node):   # netspec's `pool avg to HxW`, windows equal
            return "pooling over windows (this one netspec exported from `to HxW`)"
        a = r.attrs(node)
        kernel = list(a["kernel_shape"])
        if len(kernel) != 2:
            r.fail(f"{len(kernel)}-D pooling: netspec pools over height and width only")
        if set(a.get("dilations", [1, 1])) != {1}:
            r.fail("dilated pooling is not expressible in netspec")
        strides = list(a.get("strides", [1, 1]))
        stride = r.square(strides, "stride")
        pad_words = r.padding(a, node.input[0], kernel, strides, 1, True, node.output[0])
        padded = any(a.get("pads", [0])) or a.get("auto_pad", "NOTSET") not in ("NOTSET",
                                                                               "VALID")
        square = kernel[0] == kernel[1]
        words = [cls.keywords[0], *(["avg"] if mode == "avg" else []),
                 f"{kernel[0]}" if square else f"{kernel[0]}x{kernel[1]}",
                 r.num("s", stride, kernel[0] if square else None, "s"), *pad_words]
        if mode == "avg" and a.get("count_include_pad", 0) and padded:
            words.append("countpad")   # the padded cells count, as torch's default
        r.emit(node, cls, words, [node.input[0]])
        return None

    def __init__(self, pos: Pos, text: str, mode: str, kernel: tuple[int, int],
                 stride: int | None, padding: int | str, ceil_mode: bool = False,
                 global_pool: bool = False, count_pad: bool = False) -> None:
        super().__init__(pos, text, kernel, stride, padding, 1, ceil_mode)
        self.mode = mode
        self.global_pool = global_pool
        self.count_pad = count_pad

    def default_strides(self) -> tuple[int, int]:
        return self.kernel

    def _overpadded(self) -> bool:
        return isinstance(self.padding, int) and self.padding > min(self.kernel) // 2

    def check_options(self, rep: Reporter) -> None:
        super().check_options(rep)
        if self._overpadded() and min(self.kernel) >= 1:
            f = min(self.kernel)
            rep.error(self.where("padding"), f"padding {self.padding} is more than half the "
                                             f"{f}-wide window: some windows would see only "
                                             f"padding", ShapeError,
                      hint=f"use padding at most {f // 2}")
        if self.count_pad and self.mode != "avg":
            rep.error(self.where("countpad"), "`countpad` applies to average pooling only",
                      ShapeError, hint="a maximum never takes the padding: remove `countpad`, or "
                                       "write `pool avg`")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or not self._valid_numbers():
            return None
        if self.global_pool:   # one window over the whole input
            self.kernel = shape[:2]   # and so the stride, by default
            self.output_shape = (1, 1, shape[2])
            return self.output_shape
        spatial = self._spatial(shape, rep)
        if spatial is None or self._overpadded():
            return None
        self.output_shape = (*spatial, shape[2])
        return self.output_shape

    def floor_pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Padding under which floor rounding gives exactly this layer's windows.

        `ceil` rounding lets the last window run past the padded input; padding the
        end up to that window's end (with cells that max and average both ignore)
        gives the same windows with plain floor rounding, which every runtime
        computes alike (ONNX shape inference and runtimes differ on `ceil_mode`).
        """
        pads = []
        for o, s, f, n, (before, after) in zip(self.output_shape, self.strides, self.kernel,
                                               self.input_shape, self.pads):
            end = max(0, (o - 1) * s + f - n - before)
            pads.append((before, end if self.ceil_mode else after))
        return pads[0], pads[1]

    @property
    def saves(self) -> tuple[str, ...]:  # type: ignore[override]
        """Global average pooling is a mean, whose backward needs no values."""
        return () if self.global_pool and self.mode == "avg" else super().saves

    def saved_extra_bytes(self) -> int:
        """Max pooling's backward also keeps where each maximum was: an int64 per output."""
        return super().saved_extra_bytes() + (8 * prod(self.output_shape)
                                              if self.mode == "max" else 0)

    def flops(self) -> int:
        """Per output value: FH·FW − 1 comparisons (max), or FH·FW − 1 adds and a multiply."""
        area = self.kernel[0] * self.kernel[1]
        return prod(self.output_shape) * (area - 1 if self.mode == "max" else area)

    def explain(self) -> list[str]:
        fh, fw = self.kernel
        n = prod(self.output_shape)
        per = f"({fh}·{fw} − 1)" if self.mode == "max" else f"{fh}·{fw}"
        size = ([f"global: one {fh}×{fw} window, out = {shape_str(self.output_shape)}"]
                if self.global_pool else self.explain_size())
        return [*size, f"FLOPs = {n:,}·{per} = {self.flops():,}"]

    def attrs(self) -> dict:
        return {**super().attrs(), "mode": self.mode, "ceil": self.ceil_mode,
                "global": self.global_pool} | ({"countpad": True} if self.count_pad else {})


def adaptive_windows(n: int, o: int) -> list[tuple[int, int]]:
    """The [start, end) input cells each of `o` outputs averages, from `n` inputs.

    torch's AdaptiveAvgPool2d: start = floor(i·n/o), end = ceil((i+1)·n/o). Windows
    overlap where o does not divide n, and repeat cells where o > n.
    """
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


class AdaptivePool(Layer):
    """`pool avg to HxW`: average pooling to a fixed output size (AdaptiveAvgPool2d).

    Output cell (i, j) averages the input cells of window i along H and window j
    along W (`adaptive_windows`), so any input size gives the same H×W: the
    classifier after it (AlexNet's, VGG's) keeps its parameters at every input.
    """

    delegated = {"read": "Pool (`pool avg to HxW`)", "torch": "Pool (`pool avg to HxW`)"}
    kind = "adaptive_pool"

    def __init__(self, pos: Pos, text: str, mode: str, size: tuple[int, ...]) -> None:
        super().__init__(pos, text)
        self.mode = mode
        self.size = (size[0], size[-1])

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from .pool_numpy import adaptive_step
        return adaptive_step(self)

    def numpy_scratch(self, batch: int) -> int:
        """The product over H, held while the one over W runs."""
        return 4 * batch * self.size[0] * prod(self.input_shape[1:])

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """torch's adaptive_avg_pool2d and its backward."""
        from ..numerics.backward import pool, steps
        return steps.unary(lambda x: pool.adaptive_avg_pool_forward(x, self.size),
                           pool.adaptive_avg_pool_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """AveragePool where the output divides the input (equal windows); otherwise two
        MatMuls with constant averaging matrices, over W then H (exact for any sizes)."""
        from .pool_numpy import averaging_matrix
        x = inputs[0]
        (h, w), (oh, ow) = self.input_shape[:2], self.size
        if self.uniform():
            kernel = [h // oh, w // ow]
            return g.node(self, "AveragePool", [x], self.name, kernel_shape=kernel,
                          strides=kernel)
        rows, cols = self.windows()
        a_w = g.constant(f"{self.name}.cols", averaging_matrix(cols, w).T)   # (W, ow)
        a_h = g.constant(f"{self.name}.rows", averaging_matrix(rows, h))     # (oh, H)
        t = g.node(self, "MatMul", [x, a_w], f"{self.name}.w", name=f"{self.name}.over_w")
        g.record(t, (h, ow, self.output_shape[2]))
        return g.node(self, "MatMul", [a_h, t], self.name)

    onnx_ops = ("AveragePool", "MatMul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """netspec's own `pool avg to HxW` (an AveragePool where the windows are equal), or
        the two MatMuls by constant averaging matrices it exports otherwise: x·A_w over W,
        then A_h·(x·A_w) over H."""
        if node.op_type == "AveragePool":
            if " to " not in r.statement(node):
                return "netspec's own `pool avg to HxW`"
            cls._emit(r, node, node.input[0])
            return None
        x, y = node.input[0], node.input[1]
        over_w = r.pending("adaptive_pool")
        if r.const(x) and r.resolve(y) in over_w:   # A_h · (x · A_w): rows after columns
            source = over_w.pop(r.resolve(y))
            a = r.array(x)
            if a.ndim != 2 or not _is_averaging(a, r.shape(source)[2]):
                r.fail("a MatMul netspec reads only as adaptive average pooling, with other "
                       "weights")
            cls._emit(r, node, source)
            return None
        if len(r.shape(x)) == 4 and r.const(y) and len(r.dims(y)) == 2:
            a = r.array(y).T
            if not _is_averaging(a, r.shape(x)[3]):
                r.fail("a MatMul over a volume that is not adaptive average pooling")
            over_w[node.output[0]] = r.resolve(x)
            return None
        return "adaptive average pooling (by constant averaging matrices)"

    @classmethod
    def _emit(cls, r: OnnxReader, node: onnx.NodeProto, x: str) -> None:
        out = r.shape(node.output[0])
        r.emit(node, cls, [Pool.keywords[0], "avg", "to", f"{out[2]}x{out[3]}"], [x])

    def check_options(self, rep: Reporter) -> None:
        if self.mode != "avg":
            rep.error(self.where("mode"), "adaptive pooling is average pooling only",
                      SpecError, hint=f"write `pool avg to {self.size[0]}x{self.size[1]}`")
        for v in self.size:
            self._positive(rep, "size", "the output size", v)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or min(self.size) < 1:
            return None
        self.output_shape = (*self.size, shape[2])
        return self.output_shape

    def windows(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Each output row's and column's [start, end) in the input."""
        return (adaptive_windows(self.input_shape[0], self.size[0]),
                adaptive_windows(self.input_shape[1], self.size[1]))

    def uniform(self) -> bool:
        """Whether every window has the same size and stride (the output divides the input):
        then it is plain average pooling with kernel = stride = input // output."""
        return all(n % o == 0 for n, o in zip(self.input_shape[:2], self.size))

    @property
    def saves(self) -> tuple[str, ...]:  # type: ignore[override]
        """PyTorch's adaptive_avg_pool2d keeps its input; to 1×1 it is a mean, keeping nothing."""
        return () if self.size == (1, 1) else ("input",)

    def window(self) -> tuple[AxisWindow, AxisWindow] | None:
        """Plain average pooling when the output divides the input; else windows differ in
        size and no one window describes them (no receptive field from here on)."""
        if not self.uniform():
            return None
        k = [n // o for n, o in zip(self.input_shape[:2], self.size)]
        return (k[0], k[0], 0), (k[1], k[1], 0)

    def flops(self) -> int:
        """Per output value, its window's cells: one add each (less one) and a multiply."""
        rows, cols = self.windows()
        return self.output_shape[2] * sum(b - a for a, b in rows) * sum(b - a for a, b in cols)

    def explain(self) -> list[str]:
        lines = []
        for axis, n, o, wins in zip(("H", "W"), self.input_shape[:2], self.size, self.windows()):
            sizes = sorted({b - a for a, b in wins})
            lines.append(f"{axis}: out = {o}; window i = floor(i·{n}/{o}) … ceil((i+1)·{n}/{o}) − 1"
                         f", {' or '.join(map(str, sizes))} wide")
        return [*lines, f"FLOPs = {self.output_shape[2]}·Σ rows·Σ columns = {self.flops():,}"]

    def attrs(self) -> dict:
        return {"mode": self.mode, "output_size": list(self.size)}


def _is_averaging(a: np.ndarray, n: int) -> bool:
    """Whether `a` (o, n) averages the windows of adaptive pooling from n cells to o."""
    import numpy as np

    from .pool_numpy import averaging_matrix
    return a.shape[1] == n and np.allclose(
        a, averaging_matrix(adaptive_windows(n, a.shape[0]), n), rtol=1e-6, atol=1e-7)
