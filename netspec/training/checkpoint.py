"""Checkpoints of `netspec train`: the weights after each epoch, and beside them what a
resumed run needs.

`-o OUT.npz` holds the weights alone (every state-dict array, as `netspec init` writes
them, so that `run`, `export` and a later `train --weights` read it). `OUT.state.npz`
holds everything to continue from: the same weights, the optimizer's state, the
epochs done, their log records and the settings that must not change on resuming
(the seed and the validation split, which choose the batches). Both are written
atomically (netspec.source.files.atomic_write), the state first: a run stopped at any
moment leaves each file whole, the weights from the state's epoch or the one before,
and a resumed run reads the state alone.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from ..data.weights import save_weights
from ..source.diagnostics import Diagnostic, WeightsError
from ..source.files import atomic_write


class Checkpoint(NamedTuple):
    """A run's state after `epoch` epochs."""

    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    epoch: int
    history: list[dict]
    fixed: dict   # the settings a resumed run must share (seed, validation split, data)


def state_path(output: str) -> str:
    """Where the state beside `output` (OUT.npz) goes: OUT.state.npz."""
    stem = output[:-4] if output.endswith(".npz") else output
    return stem + ".state.npz"


def save(output: str, state: Checkpoint) -> None:
    """Write the state file, then the weights, each atomically."""
    arrays = {f"weights/{k}": v for k, v in state.weights.items()}
    arrays |= {f"optimizer/{k}": v for k, v in state.optimizer.items()}
    arrays["epoch"] = np.array(state.epoch)
    arrays["history"] = np.array(json.dumps(state.history))
    arrays["fixed"] = np.array(json.dumps(state.fixed, sort_keys=True))
    atomic_write(state_path(output), lambda f: np.savez(f, **arrays))
    save_weights(output, state.weights)


def load(output: str) -> Checkpoint:
    """The state saved beside `output` (a WeightsError naming the file if unreadable)."""
    from ..data.arrays import Archive, ArrayFileError
    path = state_path(output)
    if not os.path.isfile(path):
        raise WeightsError(Diagnostic("error", "no training state to resume from", path,
                                      hint=f"--resume continues a run that wrote -o {output}; "
                                           f"start one without --resume first"))
    try:
        with Archive(path) as archive:
            arrays = archive.read()
        weights = {k.removeprefix("weights/"): v for k, v in arrays.items()
                   if k.startswith("weights/")}
        optimizer = {k.removeprefix("optimizer/"): v for k, v in arrays.items()
                     if k.startswith("optimizer/")}
        return Checkpoint(weights, optimizer, int(arrays["epoch"]),
                          json.loads(str(arrays["history"])), json.loads(str(arrays["fixed"])))
    except (ArrayFileError, KeyError, ValueError, TypeError) as err:
        raise WeightsError(Diagnostic("error", f"cannot read the training state: {err}",
                                      path)) from None
