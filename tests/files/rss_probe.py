"""Run by test_streaming in a process of its own: uploads SIZE bytes through the app, the body
generated piece by piece while it is read, and prints (JSON) what the app answered, the hashes
of what was sent, and how far this process's peak RSS rose above its RSS before the upload.

python -m tests.files.rss_probe ACCESS_TOKEN SIZE
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import sys
from collections.abc import Iterator

import psutil

from scanner import create_app
from tests.files.helpers import BOUNDARY, MULTIPART, UPLOAD, body, part

PIECE = 1024 * 1024


class StreamedBody(io.RawIOBase):
    """A request body that exists only one piece at a time."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = memoryview(piece)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def file_pieces(size: int, digest) -> Iterator[bytes]:
    # The same piece again and again: the probe itself allocates nothing while the upload runs,
    # so whatever the peak RSS gains is the app's doing.
    block = os.urandom(PIECE)
    whole, rest = divmod(size, PIECE)
    for _ in range(whole):
        digest.update(block)
        yield block
    if rest:
        digest.update(block[:rest])
        yield block[:rest]


def main(token: str, size: int) -> dict:
    app = create_app("testing")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    # Warm up: the first request imports and initialises what every later one shares.
    warm = client.post(
        UPLOAD, data=body(part("file", os.urandom(4096), "warm.bin")), headers={**headers, "Content-Type": MULTIPART}
    )
    assert warm.status_code == 201, warm.get_data(as_text=True)

    head = part("file", b"", "big.bin", "application/octet-stream")[: -len(b"\r\n")]
    tail = b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    digest = hashlib.sha256()
    stream = StreamedBody(_body(head, size, tail, digest))

    reset_peak_rss()
    rss_before = psutil.Process().memory_info().rss
    # Handed to the app as the WSGI input itself: the test client would seek the stream to
    # measure it, and would put a boundary of its own in a multipart Content-Type header.
    environ = {"wsgi.input": stream, "CONTENT_LENGTH": str(len(head) + size + len(tail)), "CONTENT_TYPE": MULTIPART}
    response = client.post(UPLOAD, headers=headers, environ_overrides=environ)
    peak_after = peak_rss()
    return {
        "status": response.status_code,
        "answer": response.get_json(),
        "warm_id": warm.get_json()["id"],
        "sha256": digest.hexdigest(),
        "peak_growth": peak_after - rss_before,
    }


def peak_rss() -> int:
    """This process's peak RSS since reset_peak_rss. On Linux from VmHWM, which the reset clears:
    getrusage's ru_maxrss also keeps the peak of the process this one was forked from (the test
    run, however large it has grown), which survives exec and the reset."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak_rss() -> None:
    """Start the peak RSS afresh (Linux), so the peak read after the upload is the upload's own and
    not one left from starting the app. Elsewhere the lifetime peak stands, which only overstates."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _body(head: bytes, size: int, tail: bytes, digest) -> Iterator[bytes]:
    yield head
    yield from file_pieces(size, digest)
    yield tail


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
