"""The batches the backends take: N×C×H×W (or N×F) float32, checked against the network."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
        hint = "add a batch dimension: x[None]" if tuple(x.shape) == want else None
        raise InputError(Diagnostic(
            "error", f"input has shape {'×'.join(map(str, x.shape)) or 'scalar'}, but "
            f"{net.name} expects {dims} ({'N×C×H×W' if len(want) == 3 else 'N×F'})", hint=hint))
    if x.dtype.kind not in "fiu":
        raise InputError(f"input holds {x.dtype} values, not numbers")
    if x.shape[0] == 0:
        raise InputError("the batch is empty (N = 0): nothing to run")
    return np.array(x, dtype=np.float32, copy=True)


def load_input(path: str | Path) -> np.ndarray:
    """Read a .npy input batch (no pickles), as an InputError if it cannot be read.

    The header is checked before any data is read (see netspec.data.arrays).
    """
    from ...data.arrays import ArrayFileError, read_npy
    try:
        return read_npy(path)
    except ArrayFileError as err:
        raise InputError(Diagnostic("error", f"cannot read input: {err}", str(path))) from None
