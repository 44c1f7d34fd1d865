"""The benchmark suite with PyTorch eager (one thread) as a third peer, when torch is installed.

Run from a checkout: python bench/suite.py [--quick] [--repeat N] [--loaded N]. With
torch installed, a `torch` column: the test suite's PyTorch twin of the network
(tests/torch_reference.py, torch.nn.functional layer by layer), limited to one
thread. netspec itself never imports torch. See harness.py for how it measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from harness import run_suite


def torch_peer(net, weights):
    """PyTorch eager on one thread, the same weights, layer by layer."""
    import torch
    from torch_reference import torch_forward
    torch.set_num_threads(1)
    return lambda x: torch_forward(net, weights, x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    p.add_argument("--repeat", type=int)
    p.add_argument("--loaded", type=int, default=0, metavar="N",
                   help="run the workloads beside N busy processes (the loaded machine)")
    args = p.parse_args()
    try:
        import torch  # noqa: F401
        peers = {"torch-1-thread": torch_peer}
    except ImportError:
        peers = {}
    run_suite(quick=args.quick, repeat=args.repeat, peers=peers, loaded=args.loaded)


if __name__ == "__main__":
    main()
