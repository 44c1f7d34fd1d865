"""The training kernels' forward + backward against PyTorch eager, both on one thread.

Run from a checkout: python bench/train_kernels.py [--net resnet18|lenet5|all] [--repeats R].
For every distinct layer of ResNet-18 at 32×32, batch 32 (torchvision's layout: 7×7
stem, max pool, four stages of basic blocks) and LeNet-5 at batch 64 (specs/lenet5.ns),
each op's forward and its backward are timed on the same values, the least of R
calls, ours (netspec.numerics.backward, BLAS held at one thread) and torch's
(NCHW, torch.set_num_threads(1), autograd). A first layer computes no input
gradient in either (torch's input does not require one). The table gives
milliseconds per call, the ratio torch/ours of forward + backward (above 1: ours
faster) and, per network, the sum over its layers, each counted as often as the
network has it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from netspec.numerics.backward import activations, channels, conv, dense, norm, pool


class Op(NamedTuple):
    """One layer to time: its name, how many times the network has it, and for each side
    a function of a fresh random generator giving (forward, backward) closures."""

    name: str
    count: int
    ours: Callable[[np.random.Generator], tuple[Callable, Callable]]
    torch: Callable[[np.random.Generator], tuple[Callable, Callable]]


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _ours(forward: Callable, backward: Callable, n_out: Callable[[np.ndarray], np.ndarray]):
    """(forward, backward) closures: backward runs on the last forward's cache."""
    state = {}

    def fwd():
        state["y"], state["cache"] = forward()

    def bwd():
        backward(n_out(state["y"]), state["cache"])
    return fwd, bwd


def _torch(forward: Callable[[], torch.Tensor], leaves: list[torch.Tensor]):
    state = {}

    def fwd():
        for t in leaves:
            t.grad = None
        state["y"] = forward()

    def bwd():
        if "dy" not in state:
            state["dy"] = torch.randn_like(state["y"])
        state["y"].backward(state["dy"])
    return fwd, bwd


def conv_op(name: str, count: int, n: int, hw: int, c: int, k: int, f: int, s: int, p: int,
            first: bool = False) -> Op:
    out = (hw + 2 * p - f) // s + 1

    def ours(rng):
        x, w = _normal(rng, (n, hw, hw, c)), _normal(rng, (k, c, f, f))
        dy = _normal(rng, (n, out, out, k))
        return _ours(lambda: conv.conv2d_forward(x, w, None, s, ((p, p), (p, p))),
                     lambda d, cache: conv.conv2d_backward(d, cache, need_dx=not first),
                     lambda y: dy)

    def theirs(rng):
        x = torch.randn(n, c, hw, hw, requires_grad=not first)
        w = torch.randn(k, c, f, f, requires_grad=True)
        return _torch(lambda: F.conv2d(x, w, None, s, p), [x, w])
    return Op(name, count, ours, theirs)


def bn_relu_op(name: str, count: int, n: int, hw: int, c: int) -> Op:
    """Training batch norm (batch statistics and the running update), then relu."""
    def ours(rng):
        x, dy = _normal(rng, (n, hw, hw, c)), _normal(rng, (n, hw, hw, c))
        w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
        mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)

        def forward():
            y, bn_cache = norm.batch_norm_forward(x, w, b, mean, var, 1e-5, True)
            norm.batch_norm_update_running(mean, var, bn_cache)
            z, relu_cache = activations.relu_forward(y)
            return z, (bn_cache, relu_cache)

        def backward(d, cache):
            norm.batch_norm_backward(activations.relu_backward(d, cache[1])[0], cache[0])
        return _ours(forward, backward, lambda y: dy)

    def theirs(rng):
        x = torch.randn(n, c, hw, hw, requires_grad=True)
        w, b = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        mean, var = torch.zeros(c), torch.ones(c)
        return _torch(lambda: F.relu(F.batch_norm(x, mean, var, w, b, True)), [x, w, b])
    return Op(name, count, ours, theirs)


def elementwise_op(name: str, count: int, shape: tuple[int, ...], kind: str) -> Op:
    """relu alone, or a residual add."""
    def ours(rng):
        a, b, dy = _normal(rng, shape), _normal(rng, shape), _normal(rng, shape)
        if kind == "add":
            return _ours(lambda: channels.add_forward([a, b]), channels.add_backward,
                         lambda y: dy)
        return _ours(lambda: activations.relu_forward(a), activations.relu_backward, lambda y: dy)

    def theirs(rng):
        nchw = (shape[0], shape[3], shape[1], shape[2])
        a, b = torch.randn(nchw, requires_grad=True), torch.randn(nchw, requires_grad=True)
        return _torch((lambda: a + b) if kind == "add" else (lambda: F.relu(a)), [a, b])
    return Op(name, count, ours, theirs)


def pool_op(name: str, count: int, n: int, hw: int, c: int, f: int, s: int, p: int) -> Op:
    out = (hw + 2 * p - f) // s + 1

    def ours(rng):
        x, dy = _normal(rng, (n, hw, hw, c)), _normal(rng, (n, out, out, c))
        return _ours(lambda: pool.max_pool2d_forward(x, f, s, ((p, p), (p, p))),
                     pool.max_pool2d_backward, lambda y: dy)

    def theirs(rng):
        x = torch.randn(n, c, hw, hw, requires_grad=True)
        return _torch(lambda: F.max_pool2d(x, f, s, p), [x])
    return Op(name, count, ours, theirs)


def head_op(name: str, count: int, n: int, hw: int, c: int, units: int) -> Op:
    """Global average pooling, then fc."""
    def ours(rng):
        x, w, b = _normal(rng, (n, hw, hw, c)), _normal(rng, (units, c)), _normal(rng, (units,))
        dy = _normal(rng, (n, units))

        def forward():
            v, pool_cache = pool.global_avg_pool_forward(x)
            y, fc_cache = dense.fc_forward(v, w, b)
            return y, (pool_cache, fc_cache)

        def backward(d, cache):
            dv, _ = dense.fc_backward(d, cache[1])
            pool.global_avg_pool_backward(dv, cache[0])
        return _ours(forward, backward, lambda y: dy)

    def theirs(rng):
        x = torch.randn(n, c, hw, hw, requires_grad=True)
        w, b = torch.randn(units, c, requires_grad=True), torch.randn(units, requires_grad=True)
        return _torch(lambda: F.linear(x.mean((2, 3)), w, b), [x, w, b])
    return Op(name, count, ours, theirs)


def fc_op(name: str, count: int, n: int, features: int, units: int, volume: tuple | None) -> Op:
    def ours(rng):
        x = _normal(rng, (n, *volume) if volume else (n, features))
        w, b, dy = _normal(rng, (units, features)), _normal(rng, (units,)), _normal(rng, (n, units))
        return _ours(lambda: dense.fc_forward(x, w, b), dense.fc_backward, lambda y: dy)

    def theirs(rng):
        x = torch.randn(n, features, requires_grad=True)
        w, b = torch.randn(units, features, requires_grad=True), torch.randn(units, requires_grad=True)
        return _torch(lambda: F.linear(x, w, b), [x, w, b])
    return Op(name, count, ours, theirs)


def resnet18(n: int = 32) -> list[Op]:
    """ResNet-18's layers at a 32×32 input: 16×16 after the stem, 8 after the max pool."""
    return [
        conv_op("conv1 7x7 s2 3>64 @32", 1, n, 32, 3, 64, 7, 2, 3, first=True),
        bn_relu_op("bn+relu 64 @16", 1, n, 16, 64),
        pool_op("maxpool 3 s2 @16", 1, n, 16, 64, 3, 2, 1),
        conv_op("conv 3x3 64>64 @8", 4, n, 8, 64, 64, 3, 1, 1),
        bn_relu_op("bn+relu 64 @8", 4, n, 8, 64),
        elementwise_op("add 64 @8", 2, (n, 8, 8, 64), "add"),
        elementwise_op("relu 64 @8", 2, (n, 8, 8, 64), "relu"),
        conv_op("conv 3x3 s2 64>128 @8", 1, n, 8, 64, 128, 3, 2, 1),
        conv_op("conv 1x1 s2 64>128 @8", 1, n, 8, 64, 128, 1, 2, 0),
        conv_op("conv 3x3 128>128 @4", 3, n, 4, 128, 128, 3, 1, 1),
        bn_relu_op("bn+relu 128 @4", 5, n, 4, 128),
        conv_op("conv 3x3 s2 128>256 @4", 1, n, 4, 128, 256, 3, 2, 1),
        conv_op("conv 1x1 s2 128>256 @4", 1, n, 4, 128, 256, 1, 2, 0),
        conv_op("conv 3x3 256>256 @2", 3, n, 2, 256, 256, 3, 1, 1),
        bn_relu_op("bn+relu 256 @2", 5, n, 2, 256),
        conv_op("conv 3x3 s2 256>512 @2", 1, n, 2, 256, 512, 3, 2, 1),
        conv_op("conv 1x1 s2 256>512 @2", 1, n, 2, 256, 512, 1, 2, 0),
        conv_op("conv 3x3 512>512 @1", 3, n, 1, 512, 512, 3, 1, 1),
        bn_relu_op("bn+relu 512 @1", 5, n, 1, 512),
        head_op("avgpool+fc 512>1000", 1, n, 1, 512, 1000),
    ]


def lenet5(n: int = 64) -> list[Op]:
    """specs/lenet5.ns: no activations, as the course's notes draw it."""
    return [
        conv_op("conv 5x5 3>6 @32", 1, n, 32, 3, 6, 5, 1, 0, first=True),
        pool_op("maxpool 2 @28", 1, n, 28, 6, 2, 2, 0),
        conv_op("conv 5x5 6>16 @14", 1, n, 14, 6, 16, 5, 1, 0),
        pool_op("maxpool 2 @10", 1, n, 10, 16, 2, 2, 0),
        fc_op("fc 400>120 (volume)", 1, n, 400, 120, (5, 5, 16)),
        fc_op("fc 120>84", 1, n, 120, 84, None),
        fc_op("fc 84>10", 1, n, 84, 10, None),
    ]


def least(fn: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_op(op: Op, repeats: int) -> tuple[float, float, float, float]:
    """(ours forward, ours backward, torch forward, torch backward) in seconds, each the
    least of `repeats` calls, the two sides taking turns."""
    rng = np.random.default_rng(0)
    ours_f, ours_b = op.ours(rng)
    torch_f, torch_b = op.torch(rng)
    times = [float("inf")] * 4
    for _ in range(repeats):
        for i, (fwd, bwd) in enumerate(((ours_f, ours_b), (torch_f, torch_b))):
            times[2 * i] = min(times[2 * i], least(fwd, 1))
            times[2 * i + 1] = min(times[2 * i + 1], least(bwd, 1))
    return tuple(times)   # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("resnet18", "lenet5", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    nets = {"resnet18": resnet18, "lenet5": lenet5}
    with threadpool_limits(limits=1, user_api="blas"):
        for name in nets if args.net == "all" else (args.net,):
            ops = nets[name]()
            print(f"\n{name}: ms per call (least of {args.repeats}), one thread each")
            print(f"{'layer':28} {'×':>2} {'ours fwd':>9} {'bwd':>8} {'torch fwd':>10} {'bwd':>8}"
                  f" {'torch/ours':>10}")
            total = np.zeros(4)
            for op in ops:
                t = np.array(time_op(op, args.repeats)) * 1e3
                total += t * op.count
                print(f"{op.name:28} {op.count:>2} {t[0]:9.3f} {t[1]:8.3f} {t[2]:10.3f} {t[3]:8.3f}"
                      f" {(t[2] + t[3]) / (t[0] + t[1]):10.2f}")
            print(f"{'network (Σ count·time)':28} {'':>2} {total[0]:9.2f} {total[1]:8.2f} "
                  f"{total[2]:10.2f} {total[3]:8.2f} {(total[2] + total[3]) / (total[0] + total[1]):10.2f}")


if __name__ == "__main__":
    main()
