"""Start-up: CPU time of `netspec check specs/lenet5.ns` against `python -c "import lark"`.

Run from a checkout: python bench/startup.py [--runs N] [--layers N ...]. The goal is a
ratio ≤ 1.3 (issue 18): a check of a small spec may cost a third more than importing the
parsing library it is built on. Bytecode is compiled first, as `pip install` leaves it;
with --layers, also the CPU time per layer of checking generated specs that long (the
suite, bench/suite.py, runs the same at its end). See harness.startup.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import startup


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=15, help="runs of each, the least counts")
    p.add_argument("--layers", type=int, nargs="*", default=[], metavar="N",
                   help="also check generated specs of N layers")
    args = p.parse_args()
    startup(args.runs, args.layers, print)


if __name__ == "__main__":
    main()
