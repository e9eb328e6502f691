"""Work that holds the CPU for long, run so that a gevent web worker keeps serving meanwhile.

Under gevent every request of a worker shares one OS thread: a 0.1-0.7 s argon2 hash would stall
all of them, open streams included. gevent's thread pool runs it on a real thread (argon2 releases
the GIL), and the calling greenlet waits cooperatively. Elsewhere (Celery, tests, gthread) the
call runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
