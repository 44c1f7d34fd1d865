"""The `netspec` command: a thin shell over the Python API.

    commands  every command and option (`build_parser`)
    inspect   check, explain, sizes, diff: what a spec computes
    fmt       fmt: the canonical layout
    run       run, init, bench: the network on batches
    convert   export (ONNX, PyTorch) and import (ONNX)
    pictures  draw, report

Exit status: 0 = fine (warnings allowed), 1 = a spec (or its weights or input) has
errors, 2 = usage error (bad flag, missing file). Errors never surface as tracebacks:
they are rendered as `FILE:LINE:COL: error: ...` with the source line and a caret.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from ..source.diagnostics import NetspecError
from ..source.files import OutputIsInputError, Terminated, die_of
from .commands import build_parser
from .common import EXIT_SPEC, EXIT_USAGE, UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netspec` command; returns the exit status.

    Run as the command itself (no `argv`), it leaves the objects it made to the end of
    the process: Python's last collection of them all would cost a tenth of a small
    check, so they are frozen out of it (gc.freeze) at exit; and `check`, whose work is
    bounded by its files, runs without the cyclic collector, as `parse` does (together
    11 % of `netspec check specs/lenet5.ns`, in instructions).
    """
    if argv is None:
        atexit.register(gc.freeze)
    args = build_parser().parse_args(argv)
    if argv is None and args.command == "check":
        gc.disable()
    module, function = args.func.split(":")
    run = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    try:
        return run(args)
    except UsageError as err:
        print(f"netspec {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except NetspecError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_SPEC
    except OutputIsInputError as err:
        print(f"netspec {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:   # `netspec explain … | head`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except OSError as err:   # an output path that cannot be written, a full disk...
        where = f": {err.filename}" if err.filename else ""
        print(f"netspec {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"netspec {args.command}: error: out of memory", file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except Terminated as signal:   # its temporary files are gone: now end as the signal asks
        die_of(signal.signum)
        return 128 + signal.signum


def _quiet_stdout() -> None:
    """Point stdout at nothing, so that Python's flush at exit raises no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


__all__ = ["build_parser", "main"]
