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


class _Windowed(Layer):
    """Shared by conv and pool: a kernel slid with stride, padding and dilation."""

    #: For a syntax error's hint: `stride=2` → `s2` (patterns compiled on first use).
    option_spellings: tuple[tuple[str, str, str], ...] = OPTION_SPELLINGS

    @staticmethod
    def torch_window(t: TorchWriter, kernel: tuple[E.Expr, E.Expr], stride: E.Expr | None,
                     padding: E.Expr | str, dilation: E.Expr, default_stride: tuple[E.Expr, ...],
                     conv: bool = False) -> str:
        """`stride=…, padding=…, dilation=…` for torch's conv and pool modules; inside a
        residual body, tells `t` whether the window keeps H×W."""
        s = "1" if stride is None else t.py(stride)
        d = t.py(dilation)
        if padding == "same" and s != "1":
            t.unsupported("`same` padding with a stride (the padding depends on the input size)")
        if padding == "same" and conv:
            p = "'same'"   # torch pads as netspec does: the odd pixel at the end
        elif padding == "same":
            sizes = [E.const(f) for f in kernel]
            if any(f is None or f % 2 == 0 for f in sizes):
                t.unsupported("`same` pooling with an even or parameter kernel")
            p = t.py(tuple(E.Num((f - 1) // 2) for f in sizes))   # type: ignore[operator]
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
