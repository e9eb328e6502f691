"""Server-Sent Events: what every stream shares.

The routes live with what they follow (`lookups/streams.py`, `scans/streams.py`); this package
holds what they share: the event loop and its framing (`sse.py`) and the caps on open streams
(`slots.py`). The web process runs gevent workers, so an open stream costs a greenlet, not a
request thread; see gunicorn.conf.py.
"""
