"""Each zoo spec once at its own (full) input size against torchvision, with timings.

The tests run large models at a small input; this runs them as published (224×224,
520×520 for segmentation): same check as tests/test_zoo.py (weights by name, batch
statistics from the batch), on one sample, and prints per model the largest
difference of NumPy and onnxruntime from torchvision relative to the output's scale,
and each backend's time against torchvision's (ratios, measured in the same run).

Run: python bench/zoo_full_size.py [NAME ...]   (default: every zoo spec; slow)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from zoo_oracle import (batch_statistics, forward, state_dict_arrays,  # noqa: E402
                        torchvision_model, zoo_specs)

import netspec  # noqa: E402
from netspec.backends.onnx import OnnxModel  # noqa: E402


def timed(f, *args, runs: int = 2):
    """f(*args) and its best time over `runs` calls (the first pays for warming up)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        out = f(*args)
        best = min(best, time.perf_counter() - start)
    return out, best


def main(names: list[str]) -> None:
    specs = zoo_specs()
    print(f"{'model':32} {'input':>11} {'numpy err':>10} {'ort err':>10} "
          f"{'torch s':>8} {'numpy ×':>8} {'ort ×':>8}")
    for name in names or sorted(specs):
        net = netspec.load(specs[name])
        torch.manual_seed(0)
        model = torchvision_model(name).eval()
        h, w, c = net.input_shape
        # two samples: batch statistics need more than one value per channel
        x = np.random.default_rng(0).standard_normal((2, c, h, w), dtype=np.float32)
        batch_statistics(model, torch.from_numpy(x))
        weights = net.check_weights(state_dict_arrays(model))
        want, t_torch = timed(forward, model, x)
        mine, t_numpy = timed(net.numpy_model(weights), x)
        onnx_model = OnnxModel(net, weights)
        theirs, t_ort = timed(onnx_model, x)
        scale = max(1.0, float(np.abs(want).max()))
        print(f"{name:32} {h}×{w}×{c:<3} {np.abs(mine - want).max() / scale:10.1e} "
              f"{np.abs(theirs - want).max() / scale:10.1e} {t_torch:8.2f} "
              f"{t_numpy / t_torch:8.2f} {t_ort / t_torch:8.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
