"""The model's threads: a batch split across them, or one sample's work when the batch is small.

With as many samples as threads, each thread runs the whole plan on its share
of the batch. With fewer (batch 1), the model runs the plan once and lets its
steps split their own work — output rows, im2col blocks, output channels — across
the threads through `each`. Either way BLAS runs single-threaded meanwhile, so
the CPUs are never oversubscribed (on a loaded 2-core machine, BLAS's own
threads hand-shaking cost 4–6× at batch 1).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_local = threading.local()


@lru_cache(maxsize=None)
def workers(threads: int) -> ThreadPoolExecutor:
    """The pool of `threads` - 1 helpers (the calling thread is the other one)."""
    return ThreadPoolExecutor(max(threads - 1, 1), thread_name_prefix="netspec")


def width() -> int:
    """How many threads the running step may split its work across (1 but inside `spread`)."""
    return getattr(_local, "threads", 1)


@contextmanager
def spread(threads: int) -> Iterator[None]:
    """Within this block, steps run on this thread may split their work `threads` ways."""
    outer, _local.threads = width(), threads
    try:
        yield
    finally:
        _local.threads = outer


def each(fn: Callable[[T], object], items: Iterable[T]) -> None:
    """fn(item) for every item: across the threads inside `spread`, else one after another.

    The calling thread works too, and every thread takes the next item as it gets
    free; the call returns as soon as every item is done, without waiting for a
    helper that never got the CPU in time to take one (on a loaded machine a
    helper can wait several milliseconds for its turn).
    """
    items = list(items)
    threads = min(width(), len(items))
    if threads <= 1:
        for item in items:
            fn(item)
        return
    lock, finished = threading.Lock(), threading.Event()
    state = {"next": 0, "done": 0, "error": None}

    def drain() -> None:
        while True:
            with lock:
                i = state["next"]
                if i == len(items) or state["error"] is not None:
                    return
                state["next"] = i + 1
            try:
                fn(items[i])
            except BaseException as err:  # handed to the calling thread
                with lock:
                    state["error"] = err
                finished.set()
                return
            with lock:
                state["done"] += 1
                if state["done"] == len(items):
                    finished.set()

    outer, _local.threads = _local.threads, 1   # a step's parts never split again
    try:
        for _ in range(threads - 1):
            workers(outer).submit(drain)
        drain()
        finished.wait()
    finally:
        _local.threads = outer
    if state["error"] is not None:
        raise state["error"]


def chunks(n: int, parts: int) -> list[slice]:
    """range(n) cut into at most `parts` nearly equal, non-empty slices."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def channel_chunks(k: int, parts: int) -> list[slice]:
    """range(k) cut into `parts` slices whose bounds are multiples of 16 (whole cache lines)."""
    cut = [min(k, -(-k * i // parts // 16) * 16) for i in range(parts + 1)]
    cut[-1] = k
    return [slice(a, b) for a, b in zip(cut, cut[1:]) if b > a]


class Tuner:
    """Which of several ways to run something is fastest here and now, found by trying.

    Each way is tried TRIALS times in a row, in the order given, and the one with
    the least time is used from then on. A way that runs BLAS on several threads
    should come last: after such a call one of OpenBLAS's threads spins for about
    0.1 s, and takes a core from whatever runs next.

    The load of the machine changes (a batch of one sample runs faster with BLAS's
    own threads on a quiet machine, and several times slower with them when other
    processes hold the CPUs), so the choice is revisited:

    - after SLOW_CALLS calls in a row of over SLOWDOWN times the chosen way's best,
      among the contenders: the ways that came within CONTENDER times the best when
      last tried. A single slow call is noise on a loaded machine, and retrying a way
      that collapsed there (BLAS's threads beside busy processes: 0.3–0.5 s against
      25 ms for EfficientNet-B0 at batch 1) would cost more than any choice saves;
    - after `interval` calls, all the ways; the interval starts at RETUNE_CALLS and
      doubles, up to MAX_RETUNE_CALLS, each time such a retry keeps the same way.
    """

    TRIALS = 2
    SLOWDOWN = 2.0
    SLOW_CALLS = 3
    CONTENDER = 1.25
    RETUNE_CALLS = 200
    MAX_RETUNE_CALLS = 3200

    def __init__(self, ways: tuple[str, ...]) -> None:
        self.ways = ways
        self._lock = threading.Lock()
        self.interval = self.RETUNE_CALLS
        self.chosen: str | None = None
        self.best_time = dict.fromkeys(self.ways, float("inf"))
        self._retry(ways)

    def _retry(self, ways: tuple[str, ...]) -> None:
        self.previous = self.chosen if ways == self.ways else None
        self.trying = ways
        self.trials = [way for way in ways for _ in range(self.TRIALS)]
        for way in ways:
            self.best_time[way] = float("inf")
        self.chosen = None
        self.calls = self.slow = 0

    def next(self) -> str:
        """The way to run the next call."""
        with self._lock:
            return self.trials[0] if self.trials else self.chosen or self.ways[0]

    def record(self, way: str, seconds: float) -> None:
        """How long a call run `way` took."""
        with self._lock:
            if self.trials:
                if self.trials[0] == way:
                    self.trials.pop(0)
                self.best_time[way] = min(self.best_time[way], seconds)
                if not self.trials:
                    self.chosen = min(self.trying, key=self.best_time.__getitem__)
                    if self.chosen == self.previous:
                        self.interval = min(2 * self.interval, self.MAX_RETUNE_CALLS)
                return
            self.calls += 1
            best = self.best_time[self.chosen or way]
            self.slow = self.slow + 1 if seconds > self.SLOWDOWN * best else 0
            if self.calls >= self.interval:
                self._retry(self.ways)
            elif self.slow >= self.SLOW_CALLS:
                least = min(self.best_time.values())
                self._retry(tuple(w for w in self.ways
                                  if self.best_time[w] <= self.CONTENDER * least))
