"""Training data: an .npz of `x` and `y`, a folder of images (one subfolder per class),
or `digits`, scikit-learn's bundled 8×8 handwritten digits (offline, no download).

Every source becomes a `Dataset`: x as NHWC (or N×F) float32, what training runs
on, and y as int64 class indices, each checked against the network: the sample's
shape (N×C×H×W or N×H×W×C, whichever fits, and the reader is told which was read),
labels within the classes the output gives. Bad data is an InputError naming the
file and what is wrong, never a traceback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..source.diagnostics import Diagnostic, InputError

if TYPE_CHECKING:
    from ..network import Network

#: The name `--data` takes for scikit-learn's digits.
DIGITS = "digits"


class Dataset(NamedTuple):
    """Samples (NHWC or N×F float32) and their labels (int64 class indices: (N,), or
    (N, H, W) per pixel for a network whose output is a volume)."""

    x: np.ndarray
    y: np.ndarray
    note: str   # what was read, for the user: the layout, the source


def _fmt(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _error(source: str, message: str, hint: str | None = None) -> InputError:
    return InputError(Diagnostic("error", message, source, hint=hint))


def load_data(source: str, net: Network) -> Dataset:
    """The data `--data` names, checked against `net` (see the module's docstring)."""
    if source == DIGITS and not os.path.exists(source):
        x, y, note = _digits(net)
    elif os.path.isdir(source):
        x, y, note = _image_folder(source, net)
    elif os.path.isfile(source):
        x, y, note = _npz(source, net)
    else:
        raise _error(source, "no such data file or folder",
                     hint=f"give an .npz with `x` and `y`, a folder of class folders, "
                          f"or `{DIGITS}`")
    labels = check_labels(source, y, net, x.shape[0])
    if not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise _error(source, f"`x` holds {bad:,} NaN or infinite values",
                     hint="training on them would make every weight NaN")
    return Dataset(x, labels, note)


def _layout(source: str, x: np.ndarray, net: Network) -> tuple[np.ndarray, str]:
    """x as NHWC (or N×F), from N×C×H×W or N×H×W×C (N×H×W for one channel), saying which."""
    want = net.input_shape
    if x.ndim < 2 or x.shape[0] == 0:
        raise _error(source, f"`x` has shape {_fmt(x.shape) or 'scalar'}: it needs a batch of "
                             f"samples, N×{_fmt(want)}")
    sample = tuple(x.shape[1:])
    if len(want) == 1:
        if sample == want:
            return x, f"x as N×F ({_fmt(x.shape)})"
        if int(np.prod(sample)) == want[0]:
            return x.reshape(x.shape[0], -1), f"x {_fmt(x.shape)} flattened to N×{want[0]}"
    else:
        h, w, c = want
        if sample == (c, h, w):
            layout = "N×C×H×W" + (" (N×H×W×C would fit too)" if (h, w, c) == (c, h, w) else "")
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), \
                f"x as {layout}: {_fmt(x.shape)}"
        if sample == (h, w, c):
            return np.ascontiguousarray(x), f"x as N×H×W×C: {_fmt(x.shape)}"
        if c == 1 and sample == (h, w):
            return x.reshape(*x.shape, 1), f"x as N×H×W (one channel): {_fmt(x.shape)}"
    expected = (f"N×{_fmt(want)}" if len(want) == 1 else
                f"N×{want[2]}×{want[0]}×{want[1]} (N×C×H×W) or N×{_fmt(want)} (N×H×W×C)")
    raise _error(source, f"`x` has shape {_fmt(x.shape)}, but {net.name} takes {expected}",
                 hint="resize the samples, or give the spec's `input` their size")


def check_labels(source: str, y: np.ndarray, net: Network, n: int) -> np.ndarray:
    """y as int64 class indices for `n` samples, each below the output's class count."""
    out = net.output_shape
    per_pixel = len(out) == 3
    want = (n, *out[:2]) if per_pixel else (n,)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and not per_pixel:
        y = y[:, 0]
    if y.shape != want:
        raise _error(source, f"`y` has shape {_fmt(y.shape) or 'scalar'}, but {n:,} samples need "
                             f"{_fmt(want)} class indices", hint=None if y.shape[:1] == (n,) else
                     "x and y must hold the same samples, in the same order")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise _error(source, f"`y` holds {y.dtype} values, not class indices",
                     hint="labels are whole numbers 0 … K − 1")
    classes = out[-1]
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = y[(y < 0) | (y >= classes)]
        raise _error(source, f"label {int(bad.flat[0])} is out of range: {net.name} gives "
                             f"{classes} classes (0 … {classes - 1}); {bad.size:,} labels are "
                             f"outside", hint=f"give the last layer {int(y.max()) + 1} outputs"
                     if y.min() >= 0 else None)
    return y.astype(np.int64)


def _npz(path: str, net: Network) -> tuple[np.ndarray, np.ndarray, str]:
    from ..data.arrays import Archive, ArrayFileError
    try:
        with Archive(path) as archive:
            missing = [k for k in ("x", "y") if k not in archive.headers]
            if missing:
                raise _error(path, f"the archive has no array `{'` or `'.join(missing)}` (it "
                                   f"holds {', '.join(f'`{k}`' for k in archive.headers) or 'none'})",
                             hint="save the samples as `x` and the labels as `y`: "
                                  "np.savez(path, x=x, y=y)")
            arrays = archive.read(lambda name: name in ("x", "y"))
    except ArrayFileError as err:
        raise _error(path, f"cannot read data: {err}") from None
    x = arrays["x"]
    if x.dtype.kind not in "fiu":
        raise _error(path, f"`x` holds {x.dtype} values, not numbers")
    x, note = _layout(path, x, net)
    return np.ascontiguousarray(x, np.float32), arrays["y"], note


def _digits(net: Network) -> tuple[np.ndarray, np.ndarray, str]:
    """scikit-learn's digits: 1,797 8×8 images of values 0 … 16, scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise _error(DIGITS, "the digits data set comes with scikit-learn, which is not "
                             "installed", hint="pip install 'netspec[train]'") from None
    digits = load_digits()
    images = digits.images.astype(np.float32) / np.float32(16)
    x, _ = _layout(DIGITS, images, net)
    return np.ascontiguousarray(x), digits.target, \
        f"scikit-learn's digits: {images.shape[0]:,} images of 8×8, values scaled to [0, 1]"


def _image_folder(folder: str, net: Network) -> tuple[np.ndarray, np.ndarray, str]:
    """Every PNG/JPEG under each subfolder (a class, in name order), resized to the input."""
    from ..data.images import is_image, load_image
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
                     and not d.startswith("."))
    if not classes:
        raise _error(folder, "the folder has no subfolders: put each class's images in a "
                             "folder of its own (cat/, dog/, ...)")
    if len(net.input_shape) != 3:
        raise _error(folder, f"images need an H×W×C input, but {net.name} takes a vector")
    xs, ys, resized = [], [], 0
    for label, name in enumerate(classes):
        sub = os.path.join(folder, name)
        for file in sorted(os.listdir(sub)):
            if is_image(file):
                image, note = load_image(os.path.join(sub, file), net.input_shape)
                resized += note is not None
                xs.append(image[0].transpose(1, 2, 0))
                ys.append(label)
    if not xs:
        raise _error(folder, "no PNG or JPEG images in the class folders")
    x = np.ascontiguousarray(np.stack(xs), np.float32)
    note = (f"{len(xs):,} images in {len(classes)} classes ({', '.join(classes[:10])}"
            f"{', ...' if len(classes) > 10 else ''}), values in [0, 1]"
            + (f"; {resized:,} resized to {net.input_shape[1]}×{net.input_shape[0]}"
               if resized else ""))
    return x, np.array(ys, np.int64), note


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices): a seeded random `fraction` of the n samples
    held out, each part in file order."""
    count = int(round(n * fraction))
    if fraction > 0 and n >= 2:
        count = min(max(count, 1), n - 1)
    held = np.random.default_rng([seed, 2]).permutation(n)[:count]
    keep = np.ones(n, bool)
    keep[held] = False
    return np.flatnonzero(keep), np.sort(held)
