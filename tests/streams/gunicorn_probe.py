"""gunicorn settings for tests that look inside the web worker: the real settings, plus a greenlet
that writes, every 0.1 s, what the worker holds to STREAM_PROBE_DIR/<pid>.json: live greenlets,
OS threads, open streams and the streams waiting on an event."""

import gc
import json
import os
from pathlib import Path

exec(compile((Path(__file__).resolve().parents[2] / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"))  # noqa: S102


def post_worker_init(worker):
    import gevent
    import greenlet

    from scanner import events
    from scanner.streams import slots

    target = Path(os.environ["STREAM_PROBE_DIR"]) / f"{os.getpid()}.json"

    def report():
        while True:
            gc.collect()
            counts = {
                "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead),
                "os_threads": len(os.listdir("/proc/self/task")),
                "streams_open": slots.open_here(),
                "stream_waiters": events.waiting_streams(),
            }
            partial = target.with_suffix(".partial")
            partial.write_text(json.dumps(counts))
            partial.replace(target)
            gevent.sleep(0.1)

    gevent.spawn(report)
