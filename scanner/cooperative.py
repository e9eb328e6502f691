"""Work that holds the CPU for long, run so that a gevent web worker keeps serving meanwhile.

Under gevent every request of a worker shares one OS thread: a 0.1-0.7 s argon2 hash would stall
all of them, open streams included. gevent's thread pool runs it on a real thread (argon2 releases
the GIL), and the calling greenlet waits cooperatively. Elsewhere (Celery, tests, gthread) the
call runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("threading")


def run_cpu_bound(fn: Callable[..., T], *args: object) -> T:
    if not _gevent_patched():
        return fn(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(fn, args)


class Pending(Protocol):
    def get(self) -> object: ...


class _Done:
    """A future of the thread pool, waited for with `get()` like gevent's."""

    def __init__(self, future) -> None:
        self._future = future

    def get(self) -> object:
        return self._future.result()


class Lane:
    """Jobs run one at a time, in the order they were given, on a real thread of the lane's own:
    a sequence of work (the chunks of a hash) can be handed over without waiting for the piece
    before it to finish, and still runs in order. Under gevent its thread is a gevent thread pool
    of one, created on first use (in the worker process, after the fork)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = None
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., object], *args: object) -> Pending:
        if _gevent_patched():
            if self._pool is None:
                from gevent.threadpool import ThreadPool

                self._pool = ThreadPool(1)
            return self._pool.spawn(fn, *args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return _Done(self._executor.submit(fn, *args))
