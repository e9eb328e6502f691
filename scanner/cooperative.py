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


_executor: ThreadPoolExecutor | None = None


def in_background(fn: Callable[..., object], *args: object) -> Pending:
    """Start `fn(*args)` on a real thread (where it must release the GIL to gain anything, as
    hashlib does) and return what `get()` waits for: the greenlet, or the thread, goes on meanwhile."""
    global _executor
    if _gevent_patched():
        import gevent

        return gevent.get_hub().threadpool.spawn(fn, *args)
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="background")
    return _Done(_executor.submit(fn, *args))
