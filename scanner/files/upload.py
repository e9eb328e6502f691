"""Reads a multipart upload straight from the request stream in one pass: the file part is
hashed (md5, sha1, sha256) and written to the blob store chunk by chunk (a local file, or a
multipart upload to the bucket), never held whole in memory and never copied through a second
temporary file."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import BinaryIO

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ..errors import PayloadTooLarge, ValidationFailed
from .sniff import mime_type
from .storage import BlobStore

CHUNK = 256 * 1024
SNIFF_BYTES = 8192
MAX_FIELD_BYTES = 4096


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


class _FilePart:
    def __init__(self, store: BlobStore, filename: str, limit: int) -> None:
        self.store, self.filename, self.limit = store, filename, limit
        self.out = store.new_temp()
        self.temp_path = self.out.name
        self.hashes = (hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256())
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"File too large: the limit is {self.limit} bytes", details={"limit": self.limit})
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        for h in self.hashes:
            h.update(data)
        self.out.write(data)

    def finish(self, fields: dict[str, str]) -> ReceivedFile:
        self.out.close()
        if self.size == 0:
            raise ValidationFailed("The file is empty")
        md5, sha1, sha256 = (h.hexdigest() for h in self.hashes)
        return ReceivedFile(self.filename, self.size, md5, sha1, sha256, mime_type(self.head), self.temp_path, fields)

    def abort(self) -> None:
        self.out.abort()


def receive_upload(
    stream: BinaryIO, content_type: str | None, store: BlobStore, limit: int, part_name: str = "file"
) -> ReceivedFile:
    """Parse `multipart/form-data` from `stream`; the part `part_name` is the file. Small
    fields beside it are returned too. Raises ValidationFailed / PayloadTooLarge, leaving
    nothing behind."""
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise ValidationFailed("Expected multipart/form-data with a file part named 'file'")
    # The decoder applies this cap to its input buffer (one read plus the tail it still holds),
    # not to a field; fields are capped by MAX_FIELD_BYTES below.
    decoder = MultipartDecoder(options["boundary"].encode(), max_form_memory_size=2 * CHUNK)
    fields: dict[str, str] = {}
    target: _FilePart | None = None
    current: _FilePart | bytearray | None = None
    done = False
    try:
        while not done:
            chunk = stream.read(CHUNK)
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, NeedData):
                if isinstance(event, File) and event.name == part_name and target is None:
                    target = current = _FilePart(store, clean_filename(event.filename), limit)
                elif isinstance(event, Field) and len(fields) < 10:
                    current, fields[event.name] = bytearray(), ""
                    current_name = event.name
                elif isinstance(event, File | Field):
                    current = None  # parts we do not use are read past, not kept
                elif isinstance(event, Data):
                    if isinstance(current, _FilePart):
                        current.write(event.data)
                    elif isinstance(current, bytearray):
                        current += event.data
                        if len(current) > MAX_FIELD_BYTES:
                            raise ValidationFailed(f"Form field '{current_name}' is too long")
                        if not event.more_data:
                            fields[current_name] = current.decode("utf-8", "replace")
                elif isinstance(event, Epilogue):
                    done = True
                    break
                event = decoder.next_event()
            if not chunk and not done:
                raise ValidationFailed("The multipart body ended early")
        if target is None:
            raise ValidationFailed("No file part: send the file in the form field 'file'")
        return target.finish(fields)
    except ValueError as exc:  # the decoder's verdict on a malformed body
        if target is not None:
            target.abort()
        raise ValidationFailed(f"Malformed multipart body: {exc}") from None
    except BaseException:
        if target is not None:
            target.abort()
        raise
