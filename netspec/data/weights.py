"""Weights: deterministic initialisation, validation against a network, .npz files.

A weights set maps names to float32 arrays, keyed like the PyTorch `state_dict`
of the same network (`conv1.weight` (K, C_in/groups, FH, FW), `conv1.bias` (K,),
`fc1.weight` (out, in), `bn1.running_var` (C,), ...), so a torch model's
`{k: v.numpy() for k, v in model.state_dict().items()}` saved with `np.savez`
loads as it is.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..source.diagnostics import Diagnostic, Reporter, WeightsError
from ..source.files import atomic_write
from ..source.limits import available_memory

if TYPE_CHECKING:
    from ..network import Network

#: PyTorch state_dict entries that carry no weights netspec needs.
IGNORED_SUFFIXES = (".num_batches_tracked",)


def weight_bytes(net: Network) -> int:
    """Bytes the network's float32 weights take."""
    return 4 * sum(prod(shape) for shape in net.weight_shapes().values())


def ensure_fits(net: Network) -> None:
    """Refuse, before allocating, weights that would not fit in memory."""
    need, have = weight_bytes(net), available_memory()
    if have is not None and need > have:
        raise WeightsError(f"the weights of {net.name} need {need:,} bytes "
                           f"({need / 2**30:,.1f} GiB) but only {have:,} bytes "
                           f"({have / 2**30:,.1f} GiB) of memory are available")


def init_weights(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """He-normal conv and fc weights (std √(2/fan_in)), zero biases, identity batch norm.

    Deterministic: the same network and seed give the same arrays on every
    machine (NumPy's PCG64 generator, drawn in layer order).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WeightsError(f"a seed is a whole number ≥ 0, not {seed!r}")
    ensure_fits(net)
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for layer in net.layers:
        for suffix, shape in layer.weight_shapes().items():
            weights[layer.weight_key(suffix)] = _initial(rng, suffix, shape,
                                                         suffix in layer.starts_at_one)
    return weights


def _initial(rng: np.random.Generator, suffix: str, shape: tuple[int, ...],
             one: bool = False) -> np.ndarray:
    """One array's initial value: He-normal weights, ones for scales and gains (and where
    the kind says, `one`), zeros otherwise."""
    if suffix == "weight" and len(shape) > 1:
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / prod(shape[1:])))   # in place: no second copy
        return w
    # "": a layer scale starts at 1; "gain": a weight-standardised conv's (timm's gain_init)
    if one or suffix in ("weight", "running_var", "", "gain"):
        return np.ones(shape, np.float32)
    return np.zeros(shape, np.float32)


def check_weights(net: Network, weights: Mapping[str, Any],
                  source: str | None = None) -> dict[str, np.ndarray]:
    """Match `weights` to the network by name and shape; return float32 arrays.

    Every missing, unexpected, misshapen or non-finite array is reported (as a
    WeightsError pointing at the spec line of its layer), not only the first;
    `source` names the file the weights came from, for the messages.
    """
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights are a mapping of names to arrays, not {type(weights).__name__}")
    arrays = {name: np.asarray(value) for name, value in weights.items()}
    check_names_and_shapes(net, {n: (a.shape, a.dtype) for n, a in arrays.items()}, source)
    rep = _reporter(net, source)
    out: dict[str, np.ndarray] = {}
    for name in net.weight_shapes():
        # (ascontiguousarray makes a 0-d array 1-d: NFNet's `skipinit_gain` is 0-d)
        array = np.ascontiguousarray(arrays[name], dtype=np.float32).reshape(arrays[name].shape)
        if not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            rep.report(name.rsplit(".", 1)[0], f"`{name}` holds {bad:,} NaN or infinite "
                                               f"value{'s' if bad > 1 else ''}",
                       "weights must be finite numbers; was the model trained to divergence?")
        out[name] = array
    rep.raise_errors()
    return out


class _reporter(Reporter):
    """A Reporter of weights errors, each at the spec line of its layer."""

    def __init__(self, net: Network, source: str | None) -> None:
        super().__init__(net.source, net.filename)
        for name, text in net.sources.items():   # libraries the spec uses
            if name is not None:
                self.add_source(name, text)
        self.by_layer = {layer.name: layer for layer in net.layers}
        self.note = (f"in weights file {source}",) if source else ()

    def report(self, layer_name: str | None, message: str, hint: str | None = None) -> None:
        layer = self.by_layer.get(layer_name or "")
        self.error(layer.pos if layer else None, message, WeightsError, hint=hint,
                   notes=self.note)


def check_names_and_shapes(net: Network, meta: Mapping[str, tuple[tuple[int, ...], np.dtype]],
                           source: str | None = None) -> None:
    """Raise every missing, unexpected, misshapen or non-numeric array, from (shape, dtype) alone.

    So a weights file can be checked from its headers, before its data is read.
    """
    expected = net.weight_shapes()
    owner_of = {layer.weight_key(s): layer.name for layer in net.layers
                for s in layer.weight_shapes()}
    rep = _reporter(net, source)
    for name, (shape, dtype) in meta.items():
        if name.endswith(IGNORED_SUFFIXES):
            continue
        layer_name = owner_of.get(name, name.rsplit(".", 1)[0])
        if name not in expected:
            close = [k for k in expected if k.rsplit(".", 1)[0] == layer_name]
            owners = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in expected))
            rep.report(None, f"unexpected array `{name}`",
                       f"`{layer_name}` has {', '.join(close)}" if close else
                       f"the layers with weights are {', '.join(owners[:6])}"
                       + (f" and {len(owners) - 6} more" if len(owners) > 6 else ""))
            continue
        if np.dtype(dtype).kind not in "fiu":
            rep.report(layer_name, f"`{name}` holds {dtype} values, not numbers")
            continue
        if tuple(shape) != expected[name]:
            rep.report(layer_name, f"`{name}` has shape {_fmt(shape)}, but `{layer_name}` "
                                   f"needs {_fmt(expected[name])}")
    for name in expected:
        if name not in meta:
            rep.report(owner_of[name],
                       f"missing array `{name}` of shape {_fmt(expected[name])}")
    rep.raise_errors()


def _fmt(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def save_weights(path: str | Path, weights: Mapping[str, np.ndarray]) -> None:
    """Write `weights` to an .npz file atomically (no half-written file on failure)."""
    atomic_write(path, lambda f: np.savez(f, **weights))


def load_weights(path: str | Path, net: Network | None = None) -> dict[str, np.ndarray]:
    """Read an .npz weights file (no pickles) into a dict of arrays.

    Every array's header is checked before any data is read (format, size, no
    Python objects); with `net`, names and shapes are checked against it from
    the headers too, and the arrays come back checked as `check_weights` does.
    """
    from .arrays import Archive, ArrayFileError
    try:
        with Archive(path) as archive:
            if net is not None:
                check_names_and_shapes(net, {n: (h.shape, h.dtype)
                                             for n, h in archive.headers.items()}, str(path))
                expected = net.weight_shapes()
                return check_weights(net, archive.read(lambda n: n in expected), str(path))
            return archive.read()
    except ArrayFileError as err:
        raise WeightsError(Diagnostic("error", f"cannot read weights: {err}", str(path))) from None
    except OSError as err:
        raise WeightsError(Diagnostic("error", f"cannot read weights: {err.strerror or err}",
                                      str(path))) from None
