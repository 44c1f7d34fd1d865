"""Where the NumPy model's time goes, layer by layer, against onnxruntime's, both on one thread.

Run from a checkout: python bench/layers.py SPEC [--batch N] [--top K]. SPEC is a path or
the name of a spec in specs/ (mobilenet_v2, efficientnet_b0, ...). Each NumPy step (a
layer with the batch norm and activation folded or fused into it) is timed on its own,
the least over several calls; onnxruntime's profiler times each node of netspec's export
of the same weights, the median over the calls. A node counts towards the NumPy step
that computes its layer (a fused Conv+Relu node towards the conv's step, the silu
onnxruntime fuses into one node towards the step it is fused into here); nodes that are no
layer (layout reorders) are shown apart. The table groups the steps by kind
(depthwise and 1x1 convs apart from other convs), with numpy/ORT the speed ratio as in
`netspec bench --suite` (onnxruntime's time over the NumPy model's), and lists the steps
with the largest gap.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402

import netspec  # noqa: E402
from harness import find_spec  # noqa: E402
from netspec.kinds import Layer  # noqa: E402
from netspec.backends.numpy import NumpyModel, sample_shape  # noqa: E402
from netspec.numpy_backend.model import _blas  # noqa: E402
from netspec.backends.onnx import to_onnx  # noqa: E402

CALLS = 25


def kind(layer: Layer) -> str:
    """The layer's kind, a conv told apart as depthwise (`conv-dw`) or 1x1 (`conv-1x1`)."""
    if layer.kind != "conv":
        return layer.kind
    if layer.groups > 1 and layer.groups == layer.in_channels == layer.filters:
        return "conv-dw"
    return "conv-1x1" if layer.kernel == (1, 1) else "conv"


def numpy_steps(net: netspec.Network, weights: dict, x: np.ndarray) -> dict[str, float]:
    """Seconds of each step of the NumPy model on one thread (BLAS too), least over CALLS."""
    model = NumpyModel(net, weights, threads=1)
    timing: dict[str, float] = {}
    with _blas().limit(limits=1, user_api="blas"):
        for _ in range(CALLS):
            model.fast.run(model._prepare(x), timing=timing)
    return timing


def onnxruntime_nodes(net: netspec.Network, weights: dict, x: np.ndarray) -> dict[str, float]:
    """Seconds of each node of netspec's ONNX export on onnxruntime, one thread, median over
    CALLS (the first five, warm-up, left out)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(to_onnx(net, weights).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for _ in range(CALLS + 5):
            session.run(None, {name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    runs: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"].removesuffix("_kernel_time").removesuffix("_nchwc")
            node = node.split("/")[0]   # a fused node: "features.0.2/QuickGeluFusion/"
            runs[node].append(event["dur"] / 1e6)
    return {node: float(np.median(times[5:])) for node, times in runs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="a .ns file, or the name of a spec in specs/")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--top", type=int, default=12, help="how many steps to list (default 12)")
    args = p.parse_args()
    path = Path(args.spec) if Path(args.spec).is_file() else find_spec(args.spec)
    if path is None:
        sys.exit(f"layers.py: no spec {args.spec!r} here or in specs/")
    net = netspec.load(str(path))
    weights = net.init_weights(0)
    x = np.random.default_rng(0).standard_normal((args.batch, *sample_shape(net)),
                                                  dtype=np.float32)
    steps = numpy_steps(net, weights, x)
    nodes = onnxruntime_nodes(net, weights, x)

    order = {layer.name: i for i, layer in enumerate(net.layers)}
    starts = sorted(order[name] for name in steps)
    theirs: dict[str, float] = defaultdict(float)
    apart = 0.0
    for node, seconds in nodes.items():
        if node not in order:
            apart += seconds
            continue
        owner = [i for i in starts if i <= order[node]]
        theirs[net.layers[owner[-1]].name if owner else "(before the first step)"] += seconds

    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, seconds in steps.items():
        row = by_kind[kind(net.layers[order[name]])]
        row[0] += seconds
        row[1] += theirs.get(name, 0.0)
    ours_total, theirs_total = sum(steps.values()), sum(nodes.values())
    print(f"{net.name} batch {args.batch}, one thread each: NumPy model "
          f"{ours_total * 1e3:.2f} ms, onnxruntime {theirs_total * 1e3:.2f} ms "
          f"(numpy/onnxruntime {theirs_total / ours_total:.2f})")
    print(f"{'kind':12} {'numpy ms':>9} {'ORT ms':>9} {'numpy/ORT':>9}")
    for name, (ours, others) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:12} {ours * 1e3:9.2f} {others * 1e3:9.2f} {others / ours:9.2f}")
    if apart:
        print(f"{'(no layer)':12} {'':9} {apart * 1e3:9.2f}")
    print(f"the {args.top} steps with the largest gap:")
    gaps = sorted(steps, key=lambda n: theirs.get(n, 0.0) - steps[n])[:args.top]
    for name in gaps:
        layer = net.layers[order[name]]
        print(f"  {steps[name] * 1e3:7.3f} against {theirs.get(name, 0.0) * 1e3:7.3f} ms  "
              f"{kind(layer):9} {name}  {layer.input_shape} -> {layer.output_shape}")


if __name__ == "__main__":
    main()
