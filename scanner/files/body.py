"""A request body read straight into the caller's buffer (`readinto`), in blocks as large as the
buffer.

Under gunicorn a body of known length is read from the connection's socket itself. gunicorn's
own reader hands the body over as new bytes objects, assembled in BytesIO buffers two or three
times on the way (its read-ahead, then `Body.read`), and werkzeug's stream copies each once more
into the caller's buffer: for a large upload those copies, and the page faults of their fresh
memory, cost the web process more CPU than hashing the file three times over. Reading into a
buffer that is reused costs one copy, the kernel's.

Anything else (a chunked body, another server, the test client) is read through werkzeug's
stream, which enforces the request size limit on bodies of unknown length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Request

ReadInto = Callable[[memoryview], int]


def body_readinto(request: Request) -> ReadInto:
    """`readinto` for the body of `request`: fills up to len(buffer) bytes, 0 at the end."""
    direct = _GunicornBody.of(request.environ)
    if direct is not None:
        return direct.readinto
    stream = request.stream
    if hasattr(stream, "readinto"):
        return stream.readinto
    return _ReadAdapter(stream).readinto


class _ReadAdapter:
    """`readinto` over a stream that only has `read` (gunicorn's chunked body, for one)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def readinto(self, buffer: memoryview) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _GunicornBody:
    """The rest of a gunicorn request body of known length, read from its socket.

    gunicorn keeps what it read past the request headers in the connection's unreader; that
    is taken first. The body reader's `length` is kept equal to what is still unread, so that
    gunicorn, after the answer, drains exactly the rest (an upload refused half-way) before the
    next request on a kept-alive connection, and never a byte of that next request."""

    def __init__(self, body: Any) -> None:
        self.body, self.reader = body, body.reader
        self.unreader = self.reader.unreader

    @classmethod
    def of(cls, environ: dict[str, Any]) -> _GunicornBody | None:
        try:
            from gunicorn.http.body import Body, LengthReader
            from gunicorn.http.unreader import SocketUnreader
        except ImportError:
            return None
        body = environ.get("wsgi.input")
        if (
            type(body) is not Body
            or type(body.reader) is not LengthReader
            or type(body.reader.unreader) is not SocketUnreader
            or not hasattr(body.reader.unreader, "take_buffered")  # gunicorn before 27
            or body.buf.tell()  # the app read some of it already, through gunicorn
        ):
            return None
        return cls(body)

    def readinto(self, buffer: memoryview) -> int:
        want = min(len(buffer), self.reader.length)
        if want == 0:
            return 0
        held = self.unreader.take_buffered()
        if held:  # handed back what is not taken, so that gunicorn's count and its buffer agree
            n = min(want, len(held))
            buffer[:n] = held[:n]
            if n < len(held):
                self.unreader.unread(held[n:])
        else:
            try:
                n = self.unreader.sock.recv_into(buffer, want)
            except BaseException:
                self.body.failed = True  # where the next request starts is unknown: do not reuse
                raise
        self.reader.length -= n
        return n
