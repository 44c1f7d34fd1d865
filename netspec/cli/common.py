"""What every command shares: reading specs, argument types, usage errors, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..network import Network, load, parse
from ..source.diagnostics import Diagnostic, SpecError
from ..source.files import decode_spec, read_limited

if TYPE_CHECKING:
    import numpy as np

    from ..importer import ImportedSpec

#: Exit status: fine (warnings allowed), a spec (or its weights or input) has errors, a usage
#: error (bad flag, missing file).
EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line: exit status 2."""


def read_stdin() -> str:
    """The spec on standard input (a usage error when it is closed)."""
    if sys.stdin is None or getattr(sys.stdin, "buffer", None) is None:
        raise UsageError("standard input is closed: nothing to read for `-`")
    try:
        return decode_spec(read_limited(sys.stdin.buffer))
    except (OSError, ValueError) as err:
        raise SpecError(Diagnostic("error", f"cannot read spec: "
                                   f"{getattr(err, 'strerror', None) or err}", "<stdin>")
                        ) from None


def read_spec(path: str, library: bool = False,
              input_shape: tuple[int, ...] | None = None) -> Network:
    """Load a spec from a file, a pipe or `-` (stdin); a missing file is a usage error.

    With `library`, a library file (blocks only) loads as a `Library`. `input_shape`
    (from `--input HxWxC`) replaces the size the spec's `input` gives. An `.onnx`
    file is imported in memory (see netspec.importer), without reading its weights.
    """
    if path.endswith(".onnx"):
        return import_model(path, weights=False).network
    if path == "-":
        return parse(read_stdin(), "<stdin>", library=library, input_shape=input_shape)
    if not os.path.exists(path):
        raise UsageError(f"no such spec file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a spec file")
    return load(path, library=library, input_shape=input_shape)   # a file, or a pipe


def import_model(path: str, weights: bool = True) -> ImportedSpec:
    """Import an ONNX model (see netspec.importer); a missing file is a usage error."""
    from ..importer import import_onnx
    if not os.path.isfile(path):
        raise UsageError(f"no such ONNX file: {path}")
    return import_onnx(path, weights=weights)


def with_suffix(spec: str, suffix: str) -> str:
    """The spec's path with `suffix` for its extension (`network` + it for stdin)."""
    return os.path.splitext(spec if spec != "-" else "network")[0] + suffix


#: What a file's suffix names, for the message that refuses it.
SUFFIX_NAMES = {
    ".svg": "an SVG picture", ".html": "an HTML page", ".htm": "an HTML page",
    ".png": "a PNG image", ".jpg": "a JPEG image", ".jpeg": "a JPEG image",
    ".pdf": "a PDF document", ".onnx": "an ONNX model", ".py": "Python code",
    ".npy": "a NumPy array", ".npz": "a NumPy archive", ".ns": "a spec",
    ".pt": "a PyTorch checkpoint", ".pth": "a PyTorch checkpoint", ".json": "JSON",
}


def output_format(option: str, path: str, formats: dict[str, str], command: str,
                  advice: str = "") -> str:
    """The format an output's suffix names (`formats`: suffix → format), checked before
    anything is written, so that `draw -o out.png` never writes SVG into a `.png`.

    A suffix the command cannot write is a UsageError naming what it can write, with
    `advice` after it.
    """
    suffix = os.path.splitext(os.path.basename(path))[1].lower()
    if suffix in formats:
        return formats[suffix]
    named = SUFFIX_NAMES.get(suffix, f"a `{suffix}` file" if suffix else "a file without a "
                             "suffix")
    writes = {}
    for s, f in formats.items():
        writes.setdefault(f, s)
    can = " or ".join(f"{SUFFIX_NAMES.get(s, s)} ({s})" for s in writes.values())
    raise UsageError(f"{option} {path} names {named}, but netspec {command} writes {can}"
                     + (f": {advice}" if advice else ""))


def print_warnings(net: Network) -> None:
    for warning in net.warnings:
        print(warning.render(), file=sys.stderr)


def weights_of(net: Network, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """`--weights W.npz` (names and shapes checked before the data), else `--seed`'s."""
    from ..data.weights import load_weights
    if getattr(args, "weights", None):
        if not os.path.isfile(args.weights):
            raise UsageError(f"no such weights file: {args.weights}")
        return load_weights(args.weights, net)
    return net.init_weights(args.seed)
