"""The benchmark suite (`python bench/suite.py`): every workload, NumPy against its peers.

Each workload (a shipped spec at a batch size) is run by the NumPy model, by
onnxruntime on netspec's own export, and by any extra peer the caller passes
(bench/suite.py adds PyTorch eager on one thread), on the same weights and
input. Each backend runs in a process of its own, so that no runtime's threads
take CPU from another's, and they take turns, one workload at a time with a
pause between; what is reported is each one's median
images/s with the min–max over the repeats, the ratios of the medians, their
geometric mean, and the load average before and after. With `loaded`, that many
busy processes (each one spinning thread) run beside the workloads: the machine
"loaded by another process" of issue 13, made on purpose. Start-up is measured as
CPU time against `python -c "import lark"`, and `check` on generated 10,000 and
100,000-layer specs.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from math import exp, log
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from netspec.network import Network, load

#: (spec name, batch): the workloads of issue 13.
WORKLOADS = [("vgg_mini", 32), ("alexnet", 8), ("resnet18", 16), ("resnet18", 1),
             ("mobilenet_v2", 1), ("mobilenet_v2", 16), ("lenet5", 256)]
#: Families run at batch 1 and 16 whenever a spec of that name exists under specs/.
FAMILIES = ["efficientnet_b0", "convnext_tiny", "shufflenet_v2_x1_0"]
#: Where a forward pass's peak memory is measured.
MEMORY_WORKLOAD = ("resnet18", 16)

#: A peer: (network, weights) → a function running a batch.
Peer = Callable[[Network, dict[str, np.ndarray]], Callable[[np.ndarray], object]]

SPECS = Path(__file__).resolve().parent.parent / "specs"
BODY = ["conv 3x3 same x16", "relu", "bn", "conv 3x3 p1 x16 relu", "pool 3 s1 p1",
        "dropout 0.1", "conv 1x1 x16"]


#: After its warm-up calls a backend runs for this long more before it is timed: the
#: NumPy model's last trial at batch 1 gives BLAS two threads, and one of them spins for
#: about 0.1 s after it, taking a CPU from the calls that follow.
SETTLE_SECONDS = 0.2


def find_spec(name: str, root: Path = SPECS) -> Path | None:
    """specs/NAME.ns, or the first NAME.ns anywhere under specs/."""
    direct = root / f"{name}.ns"
    if direct.is_file():
        return direct
    return next(iter(sorted(root.rglob(f"{name}.ns"))), None)


def workloads(root: Path = SPECS) -> list[tuple[Path, int]]:
    """The suite's (spec file, batch) pairs that exist in this checkout."""
    found = [(find_spec(name, root), batch) for name, batch in WORKLOADS]
    found += [(find_spec(name, root), batch) for name in FAMILIES for batch in (1, 16)]
    return [(path, batch) for path, batch in found if path is not None]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


#: Seconds between one backend's turn and the next's: a runtime's threads that spin
#: a while for more work (onnxruntime's do) stop before the next backend starts.
PAUSE = 0.25


def numpy_peer(net: Network, weights: dict[str, np.ndarray]) -> Callable[[np.ndarray], object]:
    """The NumPy model (default threads)."""
    from netspec.backends.numpy import NumpyModel
    return NumpyModel(net, weights)


def _serve(conn: Connection, make: Peer) -> None:
    """A backend's process: time each (spec, batch, repeat, warm-up) it is sent.

    Ctrl-C is the suite's to handle: this process ends when the suite closes its pipe.
    """
    import signal

    from netspec.backends.numpy import sample_shape
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = conn.recv()
        except EOFError:   # the suite stopped
            return
        if job is None:
            return
        path, batch, repeat, warm_up = job
        try:
            net = load(path)
            x = np.random.default_rng(0).standard_normal((batch, *sample_shape(net)),
                                                          dtype=np.float32)
            run = make(net, net.init_weights(0))
            for _ in range(warm_up):
                run(x)
            settled = time.perf_counter() + SETTLE_SECONDS
            while time.perf_counter() < settled:
                run(x)
            seconds = []
            for _ in range(repeat):
                start = time.perf_counter()
                run(x)
                seconds.append(time.perf_counter() - start)
            conn.send(seconds)
        except Exception as err:  # a spec this backend cannot run yet: say so, go on
            conn.send(f"{type(err).__name__}: {err}")


class Backend:
    """One backend in a process of its own, kept for the whole suite: no runtime's threads
    share a process with another's (an idle onnxruntime session beside the NumPy model
    slowed it from 24 to 31 ms on EfficientNet-B0 at batch 1)."""

    def __init__(self, make: Peer) -> None:
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, make), daemon=True)
        self.process.start()

    def time(self, path: Path, batch: int, repeat: int, warm_up: int) -> list[float] | str:
        """Seconds of each of `repeat` timed calls after `warm_up` untimed ones, or why not."""
        self.conn.send((str(path), batch, repeat, warm_up))
        return self.conn.recv()

    def close(self) -> None:
        """End the process: at once when idle, or killed if it is still busy a second
        later (the suite was interrupted mid-workload)."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def bench_workload(path: Path, batch: int, repeat: int,
                   backends: dict[str, Backend]) -> dict[str, list[float]] | str:
    """Images/s of every backend, one list entry per repeat, the backends taking turns, or
    why a backend could not run it.

    A batch smaller than the NumPy model's threads is timed after seven warm-up calls,
    by which the model has settled its way to run it (NumpyModel._few: one call to
    time the steps, then each of three ways tried twice), and every backend goes on
    warming up for SETTLE_SECONDS more.
    """
    from netspec.backends.numpy import usable_cpus
    warm_up = 7 if batch < usable_cpus() else 2
    speeds = {}
    for name, backend in backends.items():
        seconds = backend.time(path, batch, repeat, warm_up)
        if isinstance(seconds, str):
            return f"{name}: {seconds}"
        speeds[name] = [batch / s for s in seconds]
        time.sleep(PAUSE)
    return speeds


def onnxruntime_peer(net: Network, weights: dict[str, np.ndarray]) -> Callable[[np.ndarray], object]:
    """onnxruntime (default threads) on netspec's export of the same weights."""
    from netspec.backends.onnx import OnnxModel
    return OnnxModel(net, weights)


def geomean(values: Iterable[float]) -> float:
    """The geometric mean of positive numbers."""
    values = list(values)
    return exp(sum(log(v) for v in values) / len(values))


def _cpu_seconds(args: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Least user + system CPU seconds of a command over `runs` runs."""
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def generated_spec(layers: int, seed: int = 0) -> str:
    """A spec of exactly `layers` layers, input and fc included, the rest random simple
    statements (the check-speed workload)."""
    rng = random.Random(seed)
    lines, made = ["input 64x64x3"], 2
    while made < layers:
        line = rng.choice([b for b in BODY if layers - made >= 1 + b.endswith(" relu")])
        lines.append(line)
        made += 1 + line.endswith(" relu")   # `conv ... relu` is two layers
    return "\n".join([*lines, "fc 10"])


def startup(runs: int, sizes: Iterable[int], out: Callable[[str], None]) -> None:
    """CPU time of `netspec check` on LeNet-5 against `import lark`, and on big specs.

    Everything runs with its bytecode cached, as an installed package has it (in a
    temporary PYTHONPYCACHEPREFIX, written by a first, untimed run); LeNet-5 and
    `import lark` take turns, so that a change in the machine's load hits both
    alike, and each big spec is checked twice, the lesser time counting.
    """
    py = [sys.executable]
    lenet = str(find_spec("lenet5"))
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        lark = check = float("inf")
        for _ in range(runs + 1):
            lark = min(lark, _cpu_seconds([*py, "-c", "import lark"], 1, env))
            check = min(check, _cpu_seconds([*py, "-m", "netspec", "check", lenet], 1, env))
        from netspec.language.grammar import SOURCE
        out(f"start-up (CPU, least of {runs} runs, bytecode cached; parser from the {SOURCE}): "
            f"check lenet5.ns {check * 1000:.0f} ms, python -c 'import lark' "
            f"{lark * 1000:.0f} ms: ratio {check / lark:.2f} (goal ≤ 1.3)")
        per_layer = []
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                spec = Path(tmp) / f"big{n}.ns"
                spec.write_text(generated_spec(n))
                try:
                    cpu = _cpu_seconds([*py, "-m", "netspec", "check", "-q", str(spec)], 2, env)
                except subprocess.CalledProcessError:
                    out(f"check of a {n:,}-layer spec failed: see `netspec check` on it")
                    continue
                per_layer.append((n, cpu))
                out(f"check of a {n:,}-layer spec: {cpu:.2f} s CPU ({cpu / n * 1e6:.1f} µs per "
                    f"layer, least of 2 runs)")
    if len(per_layer) == 2:
        (n0, t0), (n1, t1) = per_layer
        out(f"  per-layer cost at {n1:,} over that at {n0:,}: {(t1 / n1) / (t0 / n0):.2f} "
            "(1.0 = linear)")


def memory(out: Callable[[str], None]) -> None:
    """Peak RSS of a NumPy forward pass of the memory workload, in a fresh process."""
    from netspec.backends.bench import forward_rss
    name, batch = MEMORY_WORKLOAD
    path = find_spec(name)
    if path is None:
        return
    rss = forward_rss(load(path), batch)
    if rss:
        out(f"memory, {name} b{batch}: peak RSS {rss['peak']:.0f} MiB, the forward pass added "
            f"{rss['peak'] - rss['before']:.0f} MiB over the model's {rss['before']:.0f} MiB")


@contextmanager
def busy(processes: int) -> Iterator[list[subprocess.Popen]]:
    """While inside, `processes` other processes (yielded) each keep one CPU busy."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(processes)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def run_suite(quick: bool = False, repeat: int | None = None,
              peers: dict[str, Peer] | None = None,
              out: Callable[[str], None] = print, loaded: int = 0) -> dict[str, float]:
    """Run every workload and the start-up benchmark, printing as it goes.

    With `loaded`, the workloads run beside that many busy processes (`busy`);
    memory and start-up are measured after they stop. Returns each workload's
    NumPy/onnxruntime ratio (medians), by "spec bBATCH".
    """
    repeat = repeat or (3 if quick else 7)
    peers = {"onnxruntime": onnxruntime_peer, **(peers or {})}
    backends = {name: Backend(make) for name, make in {"numpy": numpy_peer, **peers}.items()}
    try:
        with busy(loaded):
            ratios = _workloads(repeat, backends, out, loaded)
    finally:
        for backend in backends.values():
            backend.close()
    memory(out)
    startup(5 if quick else 10, (10_000, 100_000), out)
    out(f"load average at the end: {_load()}")
    return ratios


def _workloads(repeat: int, backends: dict[str, Backend], out: Callable[[str], None],
               loaded: int) -> dict[str, float]:
    names = list(backends)
    peers = names[1:]
    beside = f", beside {loaded} busy process{'es' * (loaded != 1)}" if loaded else ""
    out(f"netspec bench --suite: median images/s (min–max over {repeat} repeats; each backend "
        f"in its own process, taking turns), {os.cpu_count()} CPUs{beside}, load average "
        f"{_load()}")
    out(f"{'workload':<22}" + "".join(f"{n:>26}" for n in names)
        + "".join(f"  {'numpy/' + p:>20}" for p in peers))
    ratios: dict[str, dict[str, float]] = {p: {} for p in peers}
    for path, batch in workloads():
        label = f"{path.stem} b{batch}"
        speeds = bench_workload(path, batch, repeat, backends)
        if isinstance(speeds, str):   # a spec a backend cannot run yet: say so, go on
            out(f"{label:<22}  skipped: {speeds}")
            continue
        med = {n: statistics.median(v) for n, v in speeds.items()}
        cells = "".join(f"{f'{med[n]:.1f} ({min(speeds[n]):.1f}–{max(speeds[n]):.1f})':>26}"
                        for n in names)
        for p in peers:
            ratios[p][label] = med["numpy"] / med[p]
        out(f"{label:<22}{cells}" + "".join(f"  {ratios[p][label]:>20.2f}" for p in peers))
    for p in peers:
        r = ratios[p]
        if not r:
            continue
        worst = min(r, key=r.get)
        out(f"numpy/{p}: geometric mean {geomean(r.values()):.2f}, lowest {r[worst]:.2f} "
            f"({worst})")
    out(f"load average after the workloads: {_load()}")
    return ratios["onnxruntime"]
