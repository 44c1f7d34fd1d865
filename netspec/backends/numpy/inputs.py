"""The batches the backends take: N×C×H×W (or N×F) float32, checked against the network;
and arrays in other layouts (N×H×W×C, one sample) arranged into such a batch."""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ...source.diagnostics import Diagnostic, InputError

if TYPE_CHECKING:
    from ...network import Network


def sample_shape(net: Network) -> tuple[int, ...]:
    """One sample of the network's input as the backends take it: C×H×W, or F."""
    s = net.input_shape
    return (s[2], s[0], s[1]) if len(s) == 3 else s


def prepare_input(net: Network, x: np.ndarray) -> np.ndarray:
    """A float32 copy of the N×C×H×W (or N×F) batch x, or an InputError saying what fits."""
    x = np.asarray(x)
    want = sample_shape(net)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        dims = "N×" + "×".join(map(str, want))
        hint = "add a batch dimension: x[None]" if tuple(x.shape) == want else \
            _transpose_hint(x.shape, want)
        raise InputError(Diagnostic(
            "error", f"input has shape {_dims(x.shape)}, but "
            f"{net.name} expects {dims} ({'N×C×H×W' if len(want) == 3 else 'N×F'})", hint=hint))
    if x.dtype.kind not in "fiu":
        raise InputError(f"input holds {x.dtype} values, not numbers")
    if x.shape[0] == 0:
        raise InputError("the batch is empty (N = 0): nothing to run")
    return np.array(x, dtype=np.float32, copy=True)


class Layout(NamedTuple):
    """How an array was read as a batch: its layout (`N×H×W×C`), and a doubt, when another
    layout has the same shape, that says how to transpose the array if it is in that one."""

    name: str
    doubt: str | None


def arrange_batch(x: np.ndarray, sample: tuple[int, ...],
                  name: str = "the network") -> tuple[np.ndarray, Layout]:
    """The array x as a batch the backends take (N×C×H×W, or N×F), and how it was read.

    `sample` is one sample as the backends take it, (C, H, W) or (F,). The spec and
    netspec's tables write sizes H×W×C while PyTorch writes N×C×H×W, so both are
    read: N×C×H×W, N×H×W×C, or one sample (C×H×W, H×W×C, or F) without the N. When
    H = W = C both layouts have the same shape: the array is read as N×C×H×W, and
    the layout's doubt says so. Any other shape is an InputError, whose hint says how
    to transpose the array when its axes are those of the input in another order.
    """
    x = np.asarray(x)
    shape = tuple(x.shape)
    if len(sample) == 3:
        c, h, w = sample
        ways = [("N×C×H×W", (None, c, h, w), lambda a: a),
                ("N×H×W×C", (None, h, w, c), lambda a: a.transpose(0, 3, 1, 2)),
                ("one C×H×W sample", (c, h, w), lambda a: a[None]),
                ("one H×W×C sample", (h, w, c), lambda a: a.transpose(2, 0, 1)[None])]
    else:
        ways = [("N×F", (None, *sample), lambda a: a),
                ("one sample of F", tuple(sample), lambda a: a[None])]
    for layout, want, arrange in ways:
        if len(shape) == len(want) and all(d is None or d == s for d, s in zip(want, shape)):
            break
    else:
        takes = " or ".join(f"{lay} = {_dims(['N' if d is None else d for d in want])}"
                            for lay, want, _ in ways[:-2 if len(sample) == 3 else -1])
        raise InputError(Diagnostic(
            "error", f"input has shape {_dims(shape)}, but {name} takes {takes} (or one "
            f"sample without the N)", hint=_transpose_hint(shape, sample)))
    doubt = None
    if len(sample) == 3 and layout == "N×C×H×W" and c == h == w and c > 1:
        doubt = (f"read as N×C×H×W; an N×H×W×C array has the same shape here (H = W = C = "
                 f"{c}): if it is one, transpose it first: x.transpose(0, 3, 1, 2)")
    elif len(sample) == 3 and layout == "one C×H×W sample" and c == h == w and c > 1:
        doubt = (f"read as one C×H×W sample; an H×W×C sample has the same shape here "
                 f"(H = W = C = {c}): if it is one, transpose it first: x.transpose(2, 0, 1)")
    return arrange(x), Layout(layout, doubt)


def _dims(shape: tuple | list) -> str:
    return "×".join(map(str, shape)) or "scalar"


def _transpose_hint(shape: tuple[int, ...], sample: tuple[int, ...]) -> str | None:
    """How to transpose an array of `shape` (a batch, or one sample) whose sample axes are
    those of `sample` in another order; None when they are not."""
    batch = len(shape) == len(sample) + 1
    axes = shape[1:] if batch else shape
    if len(axes) != len(sample) or sorted(axes) != sorted(sample) or tuple(axes) == sample:
        return None
    for order in permutations(range(len(axes))):
        if tuple(axes[i] for i in order) == tuple(sample):
            order = (0, *(i + 1 for i in order)) if batch else order
            target = "N×C×H×W" if len(sample) == 3 else "N×F"
            return (f"its axes are in another order: transpose it to {target} "
                    f"(x.transpose{tuple(order)} in NumPy)")
    return None


def load_input(path: str | Path) -> np.ndarray:
    """Read a .npy input batch (no pickles), as an InputError if it cannot be read.

    The header is checked before any data is read (see netspec.data.arrays).
    """
    from ...data.arrays import ArrayFileError, read_npy
    try:
        return read_npy(path)
    except ArrayFileError as err:
        raise InputError(Diagnostic("error", f"cannot read input: {err}", str(path))) from None
