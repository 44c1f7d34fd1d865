"""A training step of netspec's NumPy model against PyTorch eager, both on one thread.

Run from a checkout: python bench/train_speed.py [--rounds R] [--steps K]. For each
workload (LeNet-5 at batch 64, the digits LeNet at batch 128, ResNet-18 at 32×32 and
batch 32), both sides start from the same weights (`netspec init`'s, seed 0) and
step on the same batch: a training forward, the mean cross-entropy of the logits
(a final softmax is left out, as `netspec train` leaves it out), backward, and Adam's
update (lr 0.001), netspec's `Trainer.step` against the network's PyTorch code from
`netspec export --torch` (nn.Module, `torch.optim.Adam`, zero_grad to None). BLAS
and torch are held at one thread. The two take turns, K steps each per round; what
is printed is each side's median samples/s over the rounds (with the min–max) and
their ratio, measured in this run, beside the load average. The first step's losses
are printed too: the two compute the same thing.

Then the memory of a step: tracemalloc's peak over one netspec step (after a first
step has made Adam's state), with the weights, Adam's state and the batch, against
the training memory `netspec check --batch B` prints (weights + gradients + Adam's
state + what backward keeps + what is in flight). NumPy reports its arrays to
tracemalloc; the peak also holds the kernels' scratch (im2col blocks of about
1 MiB, padded copies), which the figure, like the forward peak's, leaves out.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from threadpoolctl import threadpool_limits

import netspec
from netspec.analysis.memory import human_bytes, training_memory
from netspec.network import Network
from netspec.training.loop import Settings, Trainer
from netspec.training.model import TrainingModel, to_nhwc

LR = 1e-3


class Workload(NamedTuple):
    name: str
    spec: str
    input_shape: tuple[int, int, int] | None   # None: as written
    batch: int


WORKLOADS = [Workload("lenet5", "specs/lenet5.ns", None, 64),
             Workload("lenet_digits", "specs/lenet_digits.ns", None, 128),
             Workload("resnet18 @32×32", "specs/resnet18.ns", (32, 32, 3), 32)]


def batch_of(net: Network, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded N×C×H×W batch and labels within the output's classes."""
    rng = np.random.default_rng(0)
    h, w, c = net.input_shape
    return (rng.standard_normal((batch, c, h, w), dtype=np.float32),
            rng.integers(0, net.output_shape[-1], batch))


def netspec_step(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[Callable[[], float], dict]:
    """netspec's training step on (x, y) from `init` weights: a function giving its loss,
    and the weights it updates."""
    weights = {k: np.array(v, np.float32) for k, v in net.init_weights(0).items()}
    trainer = Trainer(net, weights, Settings("adam", LR, batch=len(x)))
    model = TrainingModel(net, weights, training=True, rng=np.random.default_rng(0),
                          ends=[trainer.main])
    xb = to_nhwc(x)
    return lambda: trainer.step(model, xb, y)[0], weights


def torch_step(net: Network, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """PyTorch eager's step on (x, y) from the same weights: the spec's nn.Module as
    `netspec export --torch` writes it, the final softmax replaced by the identity.
    `step.held()` gives the bytes of the tensors that outlive a step (weights, gradients,
    Adam's state, the batch) and of the gradients among them."""
    import torch
    from netspec.backends.torch import torch_source
    source = torch_source(net)
    namespace: dict = {}
    exec(compile(source, f"<{net.name}>", "exec"), namespace)  # noqa: S102 (our own code)
    line = next(s for s in source.splitlines() if s.strip().startswith("model = "))
    model = namespace[line.split("= ")[1].strip().rstrip("()")]()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.init_weights(0).items()})
    last = net.layers[-1]
    if last.op == "softmax":
        setattr(model, last.name, torch.nn.Identity())
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        optimizer.step()
        return loss.item()

    def held() -> tuple[int, int]:
        """Bytes of the tensors that outlive a step, and of the gradients among them."""
        gradients = sum(p.grad.untyped_storage().nbytes() for p in model.parameters()
                        if p.grad is not None)
        tensors = [*model.state_dict(keep_vars=True).values(), xt, yt,
                   *(v for state in optimizer.state.values() for v in state.values()
                     if torch.is_tensor(v))]
        return sum(t.untyped_storage().nbytes() for t in tensors) + gradients, gradients
    step.held = held   # type: ignore[attr-defined]
    return step


def timed(step: Callable[[], float], count: int) -> float:
    """Seconds per step over `count` steps."""
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def speed(w: Workload, rounds: int, steps: int) -> None:
    net = netspec.load(ROOT / w.spec, input_shape=w.input_shape)
    x, y = batch_of(net, w.batch)
    ours, _ = netspec_step(net, x, y)
    theirs = torch_step(net, x, y)
    first = ours(), theirs()
    for _ in range(2):   # warm-up
        ours(), theirs()
    times: dict[str, list[float]] = {"netspec": [], "torch": []}
    for _ in range(rounds):
        times["netspec"].append(timed(ours, steps))
        times["torch"].append(timed(theirs, steps))
    rates = {k: [w.batch / t for t in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in rates.items()}
    cells = [f"{med[k]:9.1f} ({min(v):.1f}–{max(v):.1f})" for k, v in rates.items()]
    print(f"{w.name + f' b{w.batch}':22} {cells[0]:>28} {cells[1]:>28} "
          f"{med['netspec'] / med['torch']:8.2f}   {first[0]:.6f} / {first[1]:.6f}",
          flush=True)
    return med["netspec"] / med["torch"]


def torch_peak(net: Network, x: np.ndarray, y: np.ndarray) -> int:
    """Bytes PyTorch holds at the peak of its second step, from the profiler's memory
    events: the first step made Adam's state and the gradients; the second frees the
    gradients first (zero_grad), an event the profiler does not report for memory
    allocated before it started, then allocates as the events say."""
    from torch.profiler import ProfilerActivity, profile
    step = torch_step(net, x, y)
    step()
    held, grads = step.held()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    now = most = 0
    for e in events:
        now += e.nbytes()
        most = max(most, now)
    return max(held, held - grads + most)


def memory(w: Workload) -> None:
    net = netspec.load(ROOT / w.spec, input_shape=w.input_shape)
    x, y = batch_of(net, w.batch)
    netspec_step(net, x, y)[0]()   # every lazy import and table made before tracing
    gc.collect()
    tracemalloc.start()
    try:
        step, _ = netspec_step(net, x[:0].copy(), y[:0].copy())   # the weights alone
        del step
        step, _ = netspec_step(net, x.copy(), y.copy())
        step()   # Adam's state
        gc.collect()
        tracemalloc.reset_peak()
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    theirs = torch_peak(net, x, y)
    figure = training_memory(net, w.batch, "adam")
    print(f"{w.name + f' b{w.batch}':22} {human_bytes(figure.total):>12} {human_bytes(peak):>12} "
          f"{peak / figure.total:8.3f} {human_bytes(theirs):>12} {theirs / figure.total:8.3f}   "
          f"(weights {human_bytes(figure.weights)}, saved {human_bytes(figure.saved)}, "
          f"in flight {human_bytes(figure.in_flight)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="turns of each side (default 7)")
    parser.add_argument("--steps", type=int, default=5, help="steps per turn (default 5)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    one, five, _ = os.getloadavg()
    print(f"training step (forward, backward, Adam), samples/s: median (min–max) over "
          f"{args.rounds} turns of {args.steps} steps, one thread each; {os.cpu_count()} CPUs, "
          f"load average {one:.2f} (1 min), {five:.2f} (5 min)")
    print(f"{'workload':22} {'netspec':>28} {'torch':>28} {'ratio':>8}   first loss netspec / torch")
    with threadpool_limits(limits=1, user_api="blas"):
        ratios = [speed(w, args.rounds, args.steps) for w in WORKLOADS]
        print(f"netspec/torch: geometric mean {statistics.geometric_mean(ratios):.2f}, "
              f"lowest {min(ratios):.2f}")
        print(f"\npeak memory of a training step (adam): `netspec check`'s figure, netspec's "
              f"step (tracemalloc), torch's (its profiler's memory events)")
        print(f"{'workload':22} {'figure':>12} {'netspec':>12} {'ratio':>8} {'torch':>12} "
              f"{'ratio':>8}")
        for w in WORKLOADS:
            memory(w)
    one, five, _ = os.getloadavg()
    print(f"load average at the end: {one:.2f} (1 min), {five:.2f} (5 min)")


if __name__ == "__main__":
    main()
