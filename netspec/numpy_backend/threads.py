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
    _local.threads = threads
    try:
        yield
    finally:
        _local.threads = 1


def each(fn: Callable[[T], object], items: Iterable[T]) -> None:
    """fn(item) for every item: across the threads inside `spread`, else one after another.

    The calling thread works too; every thread takes the next item as it gets free.
    """
    items = list(items)
    threads = min(width(), len(items))
    if threads <= 1:
        for item in items:
            fn(item)
        return
    todo, lock = iter(items), threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                item = next(todo, todo)
            if item is todo:
                return
            fn(item)

    outer, _local.threads = _local.threads, 1   # a step's parts never split again
    try:
        futures = [workers(outer).submit(drain) for _ in range(threads - 1)]
        drain()
    finally:
        _local.threads = outer
    for future in futures:
        future.result()


def chunks(n: int, parts: int) -> list[slice]:
    """range(n) cut into at most `parts` nearly equal, non-empty slices."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]
