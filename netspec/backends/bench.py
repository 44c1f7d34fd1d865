"""`netspec bench`: the NumPy model against onnxruntime, same spec, weights and batch.

Speed is reported as ratios against peers measured in the same run: NumPy
images/s over onnxruntime's, and the conv layers' GFLOP/s over what a plain
`numpy.matmul` of the same shape reaches on this machine. Memory is the peak
RSS of a forward pass in a fresh process (and how much the pass itself added
to it), against the weights plus the largest im2col blocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from math import prod
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..data.weights import weight_bytes
from ..kinds import Conv
from ..kinds.conv_numpy import im2col_bytes
from .numpy import NumpyModel, sample_shape
from .onnx import OnnxModel

if TYPE_CHECKING:
    from ..network import Network


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of `repeat` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _conv_gflops(model: NumpyModel, x: np.ndarray, repeat: int) -> tuple[float, float]:
    """(GFLOP/s of the NumPy model's conv layers, GFLOP/s of numpy.matmul at their shape)."""
    timing: dict[str, float] = {}
    prepared = model._prepare(x)
    for _ in range(repeat + 1):
        model.fast.run(prepared.copy(), timing=timing)
    convs = [layer for layer in model.net.layers if layer.kind == "conv"]
    if not convs:
        return 0.0, 0.0
    flops = sum(2.0 * layer.macs * x.shape[0] for layer in convs)
    seconds = sum(timing[layer.name] for layer in convs)
    # the peer: numpy.matmul on the largest conv's im2col product, at the same shape
    m, k, n = max(((prod(lay.output_shape[:2]) * x.shape[0],
                    prod(lay.kernel) * lay.in_channels // lay.groups, lay.filters)
                   for lay in convs), key=prod)
    a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    mm = 2.0 * m * k * n / _best(lambda: np.matmul(a, b, out=out), repeat)
    return flops / seconds / 1e9, mm / 1e9


_RSS_PROBE = """
import json, sys, numpy as np, netspec
def mib(key):
    for line in open('/proc/self/status'):
        if line.startswith(key): return int(line.split()[1]) / 1024
net = netspec.load(sys.argv[1]) if sys.argv[1] != '-' else netspec.parse(sys.stdin.read())
model = net.numpy_model(seed=0)
x = np.random.default_rng(0).standard_normal((int(sys.argv[2]), *model.input_shape), dtype=np.float32)
before = mib('VmRSS:')
model(x)
print(json.dumps({'before': before, 'peak': mib('VmHWM:')}))
"""


def forward_rss(net: Network, batch: int) -> dict[str, float] | None:
    """Peak RSS (MiB) of one NumPy forward pass, in a fresh process; None if unmeasurable."""
    try:
        spec = net.filename if net.filename and os.path.isfile(net.filename) else "-"
        r = subprocess.run([sys.executable, "-c", _RSS_PROBE, spec, str(batch)],
                           input=net.source if spec == "-" else None,   # `use` needs the file
                           capture_output=True, text=True, timeout=600, check=True)
        return json.loads(r.stdout)
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


def run_bench(net: Network, batch: int = 32, repeat: int = 5, seed: int = 0) -> str:
    """Time both backends on one batch and return the report."""
    weights = net.init_weights(seed)
    x = np.random.default_rng(seed).standard_normal((batch, *sample_shape(net)), dtype=np.float32)
    numpy_model, onnx_model = NumpyModel(net, weights), OnnxModel(net, weights)
    t_np = _best(lambda: numpy_model(x), repeat)
    t_ort = _best(lambda: onnx_model(x), repeat)
    diff = float(np.max(np.abs(numpy_model(x) - onnx_model(x))))
    conv, mm = _conv_gflops(numpy_model, x, repeat)
    lines = [
        f"{net.name}: batch {batch}, best of {repeat}, {net.total_macs * batch * 2 / 1e9:.2f} "
        f"GFLOP per batch",
        f"  numpy        {batch / t_np:10.1f} images/s  ({t_np * 1000:.1f} ms per batch)",
        f"  onnxruntime  {batch / t_ort:10.1f} images/s  ({t_ort * 1000:.1f} ms per batch)",
        f"  ratio numpy/onnxruntime: {t_ort / t_np:.2f}   (max |difference| {diff:.2e})",
    ]
    if conv:
        lines.append(f"  conv layers {conv:.1f} GFLOP/s vs numpy.matmul {mm:.1f} GFLOP/s at the "
                     f"largest conv's shape: ratio {conv / mm:.2f}")
    rss = forward_rss(net, batch)
    if rss:
        parts = min(numpy_model.threads, batch)   # each thread has its own im2col block
        budget = (weight_bytes(net) + parts * max((im2col_bytes(lay, -(-batch // parts)) for lay in net.layers
                                                if isinstance(lay, Conv)), default=0)) / 2**20
        grew = rss["peak"] - rss["before"]
        lines.append(f"  memory: at most {rss['peak']:.0f} MiB in use (RSS peak), of which "
                     f"running the batch added {grew:.0f} MiB; the weights and the largest "
                     f"convolution buffers (im2col) take {budget:.0f} MiB: "
                     f"ratio {rss['peak'] / budget:.2f} (peak), {grew / budget:.2f} (added)")
    return "\n".join(lines)
