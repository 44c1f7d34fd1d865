"""`netspec fmt`: specs in netspec's one layout (netspec.language.format)."""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from ..language.format import format_spec, spec_files
from ..source.diagnostics import NetspecError
from ..source.files import atomic_write, decode_spec, read_limited
from .common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, UsageError, read_stdin


def cmd_fmt(args: argparse.Namespace) -> int:
    """`netspec fmt`: rewrite specs in the canonical layout, or say which would change."""
    status, changed, same = EXIT_OK, 0, 0
    for path in spec_files(args.files):
        shown = "<stdin>" if path == "-" else path
        try:
            if path == "-":
                text = read_stdin()
            elif not os.path.isfile(path):
                raise UsageError(f"no such spec file: {path}")
            else:
                text = decode_spec(read_limited(path))
            out = format_spec(text, shown)
        except UsageError as err:
            print(f"netspec fmt: error: {err}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        except (OSError, ValueError) as err:
            print(f"{shown}: error: cannot read spec: {getattr(err, 'strerror', None) or err}",
                  file=sys.stderr)
            status = max(status, EXIT_SPEC)
            continue
        except NetspecError as err:
            print(err.render(), file=sys.stderr)
            status = max(status, EXIT_SPEC)
            continue
        if path == "-" and not (args.check or args.diff):
            sys.stdout.write(out)
            continue
        if out == text:
            same += 1
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), out.splitlines(True),
                                                       shown, shown))
        if args.check or args.diff:
            print(f"would reformat {shown}", file=sys.stderr)
            status = max(status, EXIT_SPEC) if args.check else status
            continue
        atomic_write(path, lambda f, out=out: f.write(out.encode("utf-8")))
        print(f"reformatted {shown}", file=sys.stderr)
    if not (len(args.files) == 1 and args.files[0] == "-"):
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        print(f"{changed} file{'s' if changed != 1 else ''} {verb}, {same} left unchanged",
              file=sys.stderr)
    return status
