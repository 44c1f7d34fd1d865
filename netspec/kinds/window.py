"""Shared by conv and pool: a kernel slid over H×W with stride, padding and dilation."""

from __future__ import annotations

from .arith import effective_kernel, resolve_padding, window_output_size
from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import AxisWindow, Layer, Shape
from .statement import TorchWriter


def onnx_pads(pads: tuple[tuple[int, int], tuple[int, int]]) -> list[int]:
    """ONNX's `pads` attribute: [top, left, bottom, right]."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


#: Other tools' spellings of the window's options, with netspec's: (pattern, form, what).
OPTION_SPELLINGS = (
    (r"(?:stride|strides)=?(-?\d+)$", "s{}", "the stride"),
    (r"(?:pad|padding)=?(-?\d+)$", "p{}", "the padding"),
    (r"(?:dilation|dil)=?(-?\d+)$", "d{}", "the dilation"),
    (r"(?:groups|group)=?(-?\d+)$", "g{}", "the groups"),
)


def _course_same(axis: str, f: int, d: int, before: int, after: int) -> str:
    """`same` at stride 1 as the course writes it: p = (f − 1)/2 on each side (f the
    dilated kernel's span); an even kernel leaves half a cell, padded after."""
    e = effective_kernel(f, d)
    span = f" (f = {d}·({f}−1)+1 = {e}, the dilated span)" if d > 1 else ""
    if (e - 1) % 2 == 0:
        return (f"  at stride 1, the course's p = (f − 1)/2 = ({e} − 1)/2 = {(e - 1) // 2} "
                f"on each side{span}")
    return (f"  at stride 1, the course's p = (f − 1)/2 = ({e} − 1)/2 = {(e - 1) / 2:g}{span}"
            f" is not whole: {before} before + {after} after")


#: TensorFlow's SAME padding worked out in forward from the input's own size (timm's
#: pad_same), for the `same` windows torch's modules cannot pad themselves.
PAD_SAME = '''def pad_same(x: torch.Tensor, kernel: list[int], stride: list[int], dilation: list[int],
             value: float = 0.0) -> torch.Tensor:
    """x padded for an output of ceil(n/s) along H and W, the odd pixel after (TensorFlow's
    SAME, as timm's pad_same)."""
    ih, iw = x.shape[-2], x.shape[-1]
    pad_h = max(((ih + stride[0] - 1) // stride[0] - 1) * stride[0]
                + (kernel[0] - 1) * dilation[0] + 1 - ih, 0)
    pad_w = max(((iw + stride[1] - 1) // stride[1] - 1) * stride[1]
                + (kernel[1] - 1) * dilation[1] + 1 - iw, 0)
    return nn.functional.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2],
                             value=value)'''
#: The modules the generated code defines for `same` at a stride (timm's Conv2dSame,
#: MaxPool2dSame and AvgPool2dSame; the average may also leave the padding uncounted).
SAME_MODULES = {
    "Conv2dSame": '''class Conv2dSame(nn.Conv2d):
    """nn.Conv2d padded in forward for TensorFlow's SAME (timm's Conv2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, [self.kernel_size[0], self.kernel_size[1]],
                     [self.stride[0], self.stride[1]], [self.dilation[0], self.dilation[1]])
        return self._conv_forward(x, self.weight, self.bias)''',
    "MaxPool2dSame": '''class MaxPool2dSame(nn.Module):
    """Max pooling padded in forward for TensorFlow's SAME, by −∞ (timm's MaxPool2dSame)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        self.stride = [stride] * 2 if isinstance(stride, int) else list(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, [1, 1], float("-inf"))
        return nn.functional.max_pool2d(x, self.kernel_size, self.stride)''',
    "AvgPool2dSame": '''class AvgPool2dSame(nn.Module):
    """Average pooling padded in forward for TensorFlow's SAME: the zeros counted (timm's
    AvgPool2dSame), or with count_include_pad False, each window divided by its input cells."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        self.stride = [stride] * 2 if isinstance(stride, int) else list(stride)
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.avg_pool2d(pad_same(x, self.kernel_size, self.stride, [1, 1]),
                                     self.kernel_size, self.stride)
        if self.count_include_pad:
            return y
        ones = pad_same(torch.ones_like(x[:1, :1]), self.kernel_size, self.stride, [1, 1])
        return y / nn.functional.avg_pool2d(ones, self.kernel_size, self.stride)''',
}


class _Windowed(Layer):
    """Shared by conv and pool: a kernel slid with stride, padding and dilation."""

    #: For a syntax error's hint: `stride=2` → `s2` (patterns compiled on first use).
    option_spellings: tuple[tuple[str, str, str], ...] = OPTION_SPELLINGS

    @staticmethod
    def same_in_forward(t: TorchWriter, kernel: tuple[E.Expr, E.Expr], stride: E.Expr,
                        conv: bool) -> bool:
        """Whether `same` padding must be worked out in forward from the input's size: at a
        stride other than 1, and for pooling with an even or parameter kernel too (torch's
        pools pad both sides alike)."""
        if t.py(stride) != "1":
            return True
        return not conv and any(E.const(f) is None or E.const(f) % 2 == 0 for f in kernel)

    @staticmethod
    def torch_same_module(t: TorchWriter, name: str) -> str:
        """Define one of SAME_MODULES (and pad_same) in the generated code; its name."""
        t.helper("pad_same", PAD_SAME)
        t.helper(name, SAME_MODULES[name])
        return name

    @classmethod
    def torch_window(cls, t: TorchWriter, kernel: tuple[E.Expr, E.Expr], stride: E.Expr | None,
                     padding: E.Expr | str, dilation: E.Expr, default_stride: tuple[E.Expr, ...],
                     conv: bool = False) -> str:
        """`stride=…, padding=…, dilation=…` for torch's conv and pool modules; inside a
        residual body, tells `t` whether the window keeps H×W. A `same` padding that must
        be worked out in forward (`same_in_forward`) is left to the module (no `padding=`)."""
        s = "1" if stride is None else t.py(stride)
        d = t.py(dilation)
        in_forward = padding == "same" and cls.same_in_forward(
            t, kernel, stride if stride is not None else default_stride[0], conv)
        if in_forward:
            p = "0"
        elif padding == "same" and conv:
            p = "'same'"   # torch pads as netspec does: the odd pixel at the end
        elif padding == "same":
            p = t.py(tuple(E.Num((E.const(f) - 1) // 2) for f in kernel))   # type: ignore[operator]
        else:
            pad = E.Num(0) if padding == "valid" else padding
            p = t.py(pad)   # type: ignore[arg-type]
        for s_axis in dict.fromkeys((stride,) if stride is not None else default_stride):
            t.keeps_size(E.Compare(s_axis, (("==", E.Num(1)),)))
        if padding != "same":   # the window's span equals the padding it adds
            for k in dict.fromkeys(kernel):
                t.keeps_size(E.Compare(E.Bin("*", E.Num(2), pad), (   # type: ignore[arg-type]
                    ("==", E.Bin("*", dilation, E.Bin("-", k, E.Num(1)))),)))
        opts = []
        if stride is not None and s != t.py(default_stride):
            opts.append(f"stride={s}")
        if p != "0":
            opts.append(f"padding={p}")
        if d != "1":
            opts.append(f"dilation={d}")
        return ", ".join(opts)

    def __init__(self, pos: Pos, text: str, kernel: tuple[int, int], stride: int | None,
                 padding: int | str, dilation: int = 1, ceil_mode: bool = False) -> None:
        super().__init__(pos, text)
        self.kernel = kernel
        self.stride_opt = stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.pads: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))

    @property
    def strides(self) -> tuple[int, int]:
        return (self.stride_opt,) * 2 if self.stride_opt is not None else self.default_strides()

    def default_strides(self) -> tuple[int, int]:
        return 1, 1

    def check_options(self, rep: Reporter) -> None:
        for f in self.kernel:
            self._positive(rep, "kernel", "kernel size", f)
        if self.stride_opt is not None:
            self._positive(rep, "stride", "stride", self.stride_opt)
        self._positive(rep, "dilation", "dilation", self.dilation)
        if isinstance(self.padding, int) and self.padding < 0:
            rep.error(self.where("padding"), f"padding must not be negative, not {self.padding}",
                      ShapeError)

    def _valid_numbers(self) -> bool:
        return (min(self.kernel) >= 1 and min(self.strides) >= 1 and self.dilation >= 1
                and not (isinstance(self.padding, int) and self.padding < 0))

    def _spatial(self, shape: Shape, rep: Reporter) -> tuple[int, int] | None:
        """Output H and W, with errors for sizes below 1 and warnings for lost input.

        An axis whose message would repeat the other's (a square kernel on a
        square input) is reported once, as "height and width".
        """
        axes: dict[tuple, list[str]] = {}
        out, pads = [], []
        for axis, n, f, s in zip(("height", "width"), shape[:2], self.kernel, self.strides):
            p = resolve_padding(self.padding, n, f, s, self.dilation)
            e = effective_kernel(f, self.dilation)
            o = window_output_size(n, f, p, s, self.dilation, self.ceil_mode)
            lost = (p[0] + n - 1) - ((o - 1) * s + e - 1)
            pads.append(p)
            out.append(o)
            axes.setdefault((n, f, s, e, p, o, lost), []).append(axis)
        for (n, f, s, e, p, o, lost), names in axes.items():
            which = " and ".join(names)
            if o < 1:
                kern = f"{e}" if self.dilation == 1 else f"{self.dilation}·({f}−1)+1 = {e}"
                rep.error(self.pos, f"`{self.name}` output {which} {'are' if len(names) > 1 else 'is'} {o}: "
                                    f"floor(({n} + {p[0] + p[1]} − {kern})/{s}) + 1 = {o} < 1",
                          ShapeError,
                          notes=(f"the {e}-wide {'dilated ' if self.dilation > 1 else ''}kernel "
                                 f"does not fit in the {n + p[0] + p[1]}-wide padded input",),
                          hint="use a smaller kernel or stride, add padding, or remove a "
                               "downsampling layer before it")
            elif lost > 0 and e >= s and not self.ceil_mode:
                # Only input that a kernel at least as wide as its stride would cover
                # counts as lost: a 1×1 stride-2 conv skips every other row by design.
                unit = {"height": "row", "width": "column"}
                rows = " and ".join(f"{unit[a]}{'s' if lost > 1 else ''}" for a in names)
                rep.warning(self.pos, "lost-input", f"`{self.name}` ignores the last {lost} input {rows}: "
                                      f"stride {s} does not divide {n} + {p[0] + p[1]} − {e} = "
                                      f"{n + p[0] + p[1] - e}",
                            hint="adjust padding or input size so the windows cover the input")
            if self.padding == "same" and (p[0] + p[1]) % 2:
                rep.warning(self.where("padding"), "asymmetric-same",
                            f"`same` padding of `{self.name}` is asymmetric along the {which}: "
                            f"{p[0]} before, {p[1]} after, as in TensorFlow and ONNX SAME_UPPER",
                            hint="an odd kernel at stride 1 pads evenly")
        self.pads = (pads[0], pads[1])
        if min(out) < 1:
            return None
        return out[0], out[1]

    @property
    def saves(self) -> tuple[str, ...]:  # type: ignore[override]
        """PyTorch pads asymmetric padding first, and then keeps the padded copy instead."""
        return ("input",) if self._symmetric() else ()

    def _symmetric(self) -> bool:
        return all(before == after for before, after in self.pads)

    def saved_extra_bytes(self) -> int:
        if self._symmetric():
            return 0
        (t, b), (left, r) = self.pads
        h, w, c = self.input_shape
        return 4 * (h + t + b) * (w + left + r) * c

    def window(self) -> tuple[AxisWindow, AxisWindow]:
        e = [effective_kernel(f, self.dilation) for f in self.kernel]
        return ((e[0], self.strides[0], self.pads[0][0]),
                (e[1], self.strides[1], self.pads[1][0]))

    def explain_size(self) -> list[str]:
        """Output height and width (and `same` padding) with the numbers filled in."""
        lines = []
        axes = list(zip(("H", "W"), self.input_shape[:2], self.kernel, self.strides, self.pads,
                        self.output_shape[:2]))
        if axes[0][1:] == axes[1][1:]:
            axes = [("H, W", *axes[0][1:])]
        for axis, n, f, s, (pb, pa), out in axes:
            d = self.dilation
            e = f"{d}·({f}−1)+1" if d > 1 else f"{f}"
            if self.padding == "same":
                lines.append(f"same {axis}: out = ceil({n}/{s}) = {out}, padding "
                             f"max(({out}−1)·{s} + {effective_kernel(f, d)} − {n}, 0) = {pb + pa}"
                             f" = {pb} before + {pa} after")
                if s == 1:
                    lines.append(_course_same(axis, f, d, pb, pa))
            pad = f"2·{pb}" if pb == pa else f"{pb} + {pa}"
            rnd = "ceil" if self.ceil_mode else "floor"
            lines.append(f"{axis}: out = {rnd}(({n} + {pad} − {e})/{s}) + 1 = {out}")
        return lines

    def attrs(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.strides),
                "pads": [self.pads[0][0], self.pads[1][0], self.pads[0][1], self.pads[1][1]],
                "padding": self.padding, "dilation": self.dilation}
