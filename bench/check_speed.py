"""How long `netspec check` takes on a generated 10,000-layer spec, LeNet-5 and ResNet-50.

Run: python bench/check_speed.py [--layers N]. Times whole commands (start-up
included), best of five, since start-up is what a user waits for.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = ["conv 3x3 same x16", "relu", "bn", "conv 3x3 p1 x16 relu", "pool 3 s1 p1",
        "dropout 0.1", "conv 1x1 x16"]


def generated_spec(layers: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "\n".join(["input 64x64x3", *(rng.choice(BODY) for _ in range(layers)), "fc 10"])


def best_time(args: list[str], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netspec", *args], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--layers", type=int, default=10_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "big.ns"
        spec.write_text(generated_spec(args.layers))
        big = best_time(["check", "-q", str(spec)])
    small = best_time(["check", "-q", "specs/lenet5.ns"])
    resnet = best_time(["check", "-q", "specs/resnet50.ns"])
    python = best_time(["--version"])
    print(f"python + netspec start-up:   {python * 1000:7.1f} ms")
    print(f"check lenet5.ns:             {small * 1000:7.1f} ms")
    print(f"check resnet50.ns:           {resnet * 1000:7.1f} ms")
    print(f"check {args.layers:,}-layer spec:   {big * 1000:7.1f} ms "
          f"({(big - small) / args.layers * 1e6:.1f} µs per layer)")


if __name__ == "__main__":
    main()
