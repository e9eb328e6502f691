"""Reads a multipart upload straight from the request body in one pass: the file part is
hashed (md5, sha1, sha256) and written to the blob store a block at a time (a local file, or a
multipart upload to the bucket), never held whole in memory and never copied through a second
temporary file. The body is read a block at a time into buffers taken in turn (`multipart.py`):
the hashes and the write of the blocks before run on threads meanwhile (`_Sinks`)."""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from werkzeug.http import parse_options_header

from ..cooperative import Lane, Pending
from ..errors import PayloadTooLarge, ValidationFailed
from .body import ReadInto
from .multipart import MultipartReader, Part
from .sniff import mime_type
from .storage import BlobStore, BlobWriter

SNIFF_BYTES = 8192
MAX_FIELD_BYTES = 4096
PARALLEL_BYTES = 64 * 1024
MD5_LANE, SHA_LANE, WRITE_LANE = Lane("md5"), Lane("sha"), Lane("write")


@dataclass
class ReceivedFile:
    filename: str
    size: int
    md5: str
    sha1: str
    sha256: str
    mime_type: str
    temp_path: str
    fields: dict[str, str] = field(default_factory=dict)


def clean_filename(raw: str | None) -> str:
    """The name as the user gave it, minus what cannot be displayed safely."""
    if raw is None or not raw.strip():
        raise ValidationFailed("No selected file: the file part has no filename")
    name = unicodedata.normalize("NFC", raw)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not name or name in (".", "..") or set(name) <= {".", " "}:
        raise ValidationFailed("Invalid filename")
    return name[:255]


def _update(hashes: tuple[Any, ...], data: memoryview) -> None:
    for h in hashes:
        h.update(data)


class _Sinks:
    """Where each chunk of the file goes: md5, sha1 and sha256, and the blob store, on threads
    while the request's greenlet reads the next chunks. Hashing is what an upload spends its CPU
    on, and hashlib releases the GIL: md5 takes one thread, sha1 and sha256 (about as long
    together) another. A local file is written on a third: writing the page cache costs about a
    millisecond of CPU per MiB here, and a greenlet waiting in a system call stalls every request
    of its worker. A bucket's writer is called on the greenlet, as it sends its parts from a
    sender of its own.

    Each thread is a lane (`cooperative.Lane`, one per process): a lane runs its chunks in order,
    so none waits for the others between chunks. A chunk's buffer is waited for only when the
    reader is about to fill it again (`release`)."""

    def __init__(self, out: BlobWriter) -> None:
        self.out = out
        self.md5, self.sha1, self.sha256 = (
            hashlib.md5(usedforsecurity=False),
            hashlib.sha1(usedforsecurity=False),
            hashlib.sha256(),
        )
        self._in_flight: list[tuple[object, list[Pending]]] = []

    def put(self, data: memoryview) -> None:
        if len(data) < PARALLEL_BYTES:  # handing a small piece over costs more than the work
            self.wait()
            _update((self.md5, self.sha1, self.sha256), data)
            self.out.write(data)
            return
        jobs = [
            MD5_LANE.submit(_update, (self.md5,), data),
            SHA_LANE.submit(_update, (self.sha1, self.sha256), data),
        ]
        if self.out.blocking:
            jobs.append(WRITE_LANE.submit(self.out.write, data))
        self._in_flight.append((data.obj, jobs))
        if not self.out.blocking:
            self.out.write(data)

    def release(self, buffer: bytearray) -> None:
        """Until no chunk in flight points into `buffer`."""
        while any(obj is buffer for obj, _ in self._in_flight):
            self._wait_oldest()

    def wait(self) -> None:
        """Until every sink is done with every chunk in flight; then raise the first failure."""
        failure = None
        while self._in_flight:
            try:
                self._wait_oldest()
            except Exception as exc:  # the later chunks are still waited for
                failure = failure or exc
        if failure is not None:
            raise failure

    def _wait_oldest(self) -> None:
        """Until the oldest chunk is done; then raise what a sink raised (the disk is full, the
        bucket is down), once each of them is done with it."""
        _, jobs = self._in_flight.pop(0)
        failures = []
        for work in jobs:
            try:
                work.get()
            except Exception as exc:  # the others are still waited for
                failures.append(exc)
        if failures:
            raise failures[0]

    def hexdigests(self) -> tuple[str, str, str]:
        self.wait()
        return self.md5.hexdigest(), self.sha1.hexdigest(), self.sha256.hexdigest()


class _FilePart:
    def __init__(self, store: BlobStore, filename: str, limit: int) -> None:
        self.store, self.filename, self.limit = store, filename, limit
        self.out = store.new_temp()
        self.temp_path = self.out.name
        self.sinks = _Sinks(self.out)
        self.size = 0
        self.head = b""

    def write(self, data: memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"File too large: the limit is {self.limit} bytes", details={"limit": self.limit})
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.sinks.put(data)

    def end(self) -> None:
        self.sinks.wait()  # done with the buffers its chunks point into

    def finish(self, fields: dict[str, str]) -> ReceivedFile:
        md5, sha1, sha256 = self.sinks.hexdigests()
        self.out.close()
        if self.size == 0:
            raise ValidationFailed("The file is empty")
        return ReceivedFile(self.filename, self.size, md5, sha1, sha256, mime_type(self.head), self.temp_path, fields)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # what failed is being answered already
            self.sinks.wait()  # no thread still reading a chunk of a part that is going away
        self.out.abort()


class _FieldPart:
    """A small form field beside the file, kept in `fields` once whole."""

    def __init__(self, name: str, fields: dict[str, str]) -> None:
        self.name, self.fields, self.buffer = name, fields, bytearray()
        fields[name] = ""

    def write(self, data: memoryview) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_FIELD_BYTES:
            raise ValidationFailed(f"Form field '{self.name}' is too long")

    def end(self) -> None:
        self.fields[self.name] = self.buffer.decode("utf-8", "replace")


class _Form:
    """The parts of one upload, as the decoder announces them: the file part, at most ten small
    fields; other parts are read past, not kept."""

    def __init__(self, store: BlobStore, limit: int, part_name: str) -> None:
        self.store, self.limit, self.part_name = store, limit, part_name
        self.fields: dict[str, str] = {}
        self.file: _FilePart | None = None
        self.current: _FilePart | _FieldPart | None = None

    def start(self, part: Part) -> None:
        self.end()
        if part.filename is not None and part.name == self.part_name and self.file is None:
            self.file = self.current = _FilePart(self.store, clean_filename(part.filename), self.limit)
        elif part.filename is None and part.name is not None and len(self.fields) < 10:
            self.current = _FieldPart(part.name, self.fields)
        else:
            self.current = None

    def data(self, data: memoryview) -> None:
        if self.current is not None:
            self.current.write(data)

    def end(self) -> None:
        if self.current is not None:
            self.current.end()
            self.current = None

    def release(self, buffer: bytearray) -> None:
        if self.file is not None:
            self.file.sinks.release(buffer)

    def abort(self) -> None:
        if self.file is not None:
            self.file.abort()


def receive_upload(
    readinto: ReadInto, content_type: str | None, store: BlobStore, limit: int, part_name: str = "file"
) -> ReceivedFile:
    """Parse `multipart/form-data` from the body that `readinto` reads (`body.body_readinto`); the
    part `part_name` is the file. Small fields beside it are returned too. Raises
    ValidationFailed / PayloadTooLarge, leaving nothing behind."""
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise ValidationFailed("Expected multipart/form-data with a file part named 'file'")
    form = _Form(store, limit, part_name)
    try:
        reader = MultipartReader(options["boundary"].encode(), readinto, before_refill=form.release)
        for event in reader.events():
            if isinstance(event, Part):
                form.start(event)
            else:
                form.data(event)
        form.end()
        if form.file is None:
            raise ValidationFailed("No file part: send the file in the form field 'file'")
        return form.file.finish(form.fields)
    except ValueError as exc:  # the reader's verdict on a malformed body
        form.abort()
        raise ValidationFailed(f"Malformed multipart body: {exc}") from None
    except BaseException:
        form.abort()
        raise
