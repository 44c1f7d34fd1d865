"""Convolution arithmetic: output sizes and `same` padding, one axis at a time.

The formulas, for an input of size n, kernel f, stride s, dilation d and padding
p_before + p_after (p on both sides when given as one number):

    effective kernel   e   = d·(f − 1) + 1
    output size        out = floor((n + p_before + p_after − e) / s) + 1
    `same`             out = ceil(n / s), total padding max((out − 1)·s + e − n, 0),
                       split as in ONNX SAME_UPPER: the odd pixel goes after.

Pooling is the d = 1 case; `ceil` rounding (Caffe) replaces floor by ceil but
never starts a window entirely in the padding after the input.
"""

from __future__ import annotations

from ..source.diagnostics import ShapeError


def effective_kernel(f: int, d: int = 1) -> int:
    """Span of a dilated kernel: d·(f − 1) + 1."""
    return d * (f - 1) + 1


def same_padding(n: int, f: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """(before, after) padding that makes the output ceil(n / s), SAME_UPPER style.

    Raises ShapeError unless every argument is a whole number ≥ 1.
    """
    _check_positive(n=n, f=f, s=s, d=d)
    out = -(-n // s)
    total = max((out - 1) * s + effective_kernel(f, d) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: int | str, n: int, f: int, s: int, d: int = 1) -> tuple[int, int]:
    """Turn a padding spec (an int, `same` or `valid`) into (before, after)."""
    if padding == "same":
        return same_padding(n, f, s, d)
    if padding == "valid":
        return 0, 0
    if isinstance(padding, bool) or not isinstance(padding, int):
        raise ShapeError(f"padding must be an integer, 'same' or 'valid', not {padding!r}")
    return padding, padding


def window_output_size(n: int, f: int, pads: tuple[int, int], s: int, d: int = 1,
                       ceil_mode: bool = False) -> int:
    """Number of window positions; may be < 1, which callers report as an error."""
    span = n + pads[0] + pads[1] - effective_kernel(f, d)
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and out > 1 and (out - 1) * s >= n + pads[0]:
        out -= 1
    return out


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise ShapeError(f"{name} must be an integer, not {v!r}")
        if v < 1:
            raise ShapeError(f"{name} must be at least 1, not {v}")


def _size(n: int, f: int, p: int | str, s: int, d: int, ceil_mode: bool) -> int:
    _check_positive(n=n, f=f, s=s, d=d)
    pads = resolve_padding(p, n, f, s, d)
    if pads[0] < 0:
        raise ShapeError(f"padding must not be negative, not {p}")
    out = window_output_size(n, f, pads, s, d, ceil_mode)
    if out < 1:
        raise ShapeError(
            f"output size floor(({n} + {pads[0] + pads[1]} − {effective_kernel(f, d)})/{s}) + 1"
            f" = {out} is below 1: the kernel does not fit in the padded input")
    return out


def conv_output_size(n: int, f: int, p: int | str = 0, s: int = 1, d: int = 1) -> int:
    """Output size of a convolution along one axis: floor((n + 2p − d·(f−1) − 1)/s) + 1.

    `p` may be an int or `"same"`/`"valid"`. Raises ShapeError when an argument is
    not a positive integer (p: non-negative) or the kernel does not fit.

    >>> conv_output_size(32, 5)          # LeNet's first conv: 32 − 5 + 1
    28
    >>> conv_output_size(224, 7, p=3, s=2)
    112
    """
    return _size(n, f, p, s, d, False)


def pool_output_size(n: int, f: int, p: int | str = 0, s: int | None = None,
                     ceil_mode: bool = False) -> int:
    """Output size of a pooling window along one axis: floor((n + 2p − f)/s) + 1.

    The stride defaults to the window size, as in `pool 2`. With `ceil_mode` the
    division rounds up (Caffe, PyTorch's `ceil_mode=True`). As in the language,
    padding may be at most half the window, so no window sees only padding.

    >>> pool_output_size(28, 2)
    14
    """
    if isinstance(p, int) and not isinstance(p, bool) and isinstance(f, int) and p > f // 2:
        raise ShapeError(f"padding {p} is more than half the {f}-wide window: some windows "
                         f"would see only padding")
    return _size(n, f, p, f if s is None else s, 1, ceil_mode)
