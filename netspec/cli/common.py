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
