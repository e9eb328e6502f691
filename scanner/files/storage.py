"""Blob storage for uploaded files, addressed by sha256.

Two stores behind one interface: the local file system (embedded mode, one machine) and an
S3-compatible bucket (`BLOB_STORE_URL=s3://bucket/prefix`) that web and worker processes on
different machines all reach. An upload is written while it is hashed, so it goes to a
temporary name first and is renamed (committed) to its sha256 once the hashes are known;
readers get a seekable binary stream, never a whole file in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlparse

from ..errors import AppError

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MiB = 1024 * 1024


class BlobStoreUnavailable(AppError):
    status, code, message = 503, "BLOB_STORE_UNAVAILABLE", "The file store cannot be reached; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "30"})


@contextlib.contextmanager
def _answered_as_unavailable() -> Iterator[None]:
    """The bucket failing (down, refusing our credentials) is a 503 for the uploader, not a 500."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.warning("blob store error: %s", exc)
        raise BlobStoreUnavailable() from exc


class BlobWriter(Protocol):
    name: str  # the temporary name, for BlobStore.commit / discard
    blocking: bool  # write() may wait on a disk: an upload calls it on a thread, not its greenlet

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...  # what was written is stored under `name`
    def abort(self) -> None: ...  # nothing written is left anywhere


class BlobStore(Protocol):
    def new_temp(self) -> BlobWriter: ...
    def commit(self, temp: str, sha256: str) -> str: ...
    def discard(self, temp: str) -> None: ...
    def open(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


def _checked(key: str) -> str:
    if not _SHA256.match(key):
        raise ValueError("blob keys are sha256 hex digests")
    return key


class _LocalWriter:
    blocking = True

    def __init__(self, directory: Path) -> None:
        fd, self.name = tempfile.mkstemp(dir=directory, prefix="upload-")
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "wb")
        self.write = self._file.write

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name)


class LocalBlobStore:
    """Blobs under one directory outside any served folder, owner-only permissions."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key[2:4] / key

    def new_temp(self) -> BlobWriter:
        return _LocalWriter(self.tmp)

    def commit(self, temp: str, sha256: str) -> str:
        final = self._path(sha256)
        for directory in (final.parent.parent, final.parent):  # mkdir(parents=True) ignores mode
            directory.mkdir(exist_ok=True, mode=0o700)
        # Same name means same bytes: replacing an existing blob is harmless and atomic.
        os.replace(temp, final)
        return sha256

    def discard(self, temp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            stream = self._path(key).open("rb")
        except FileNotFoundError:
            # The usual cause: web and worker on different machines, each with its own disk.
            raise FileNotFoundError(
                f"blob {key} is not under this process's BLOB_DIR ({self.root}); web and worker processes"
                " on different machines need a shared store: set BLOB_STORE_URL=s3://bucket/prefix"
            ) from None
        with stream:
            yield stream

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class _MultipartWriter:
    """Streams an upload into one object with a multipart upload. One part is filled while the
    one before it is sent (by a thread of the writer's own), so reading the request and talking
    to the bucket overlap, and at most two parts are held in memory whatever the size of the
    file. A file smaller than one part is one PUT."""

    blocking = False

    def __init__(self, store: S3BlobStore, name: str) -> None:
        self.store, self.name = store, name
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future[dict[str, Any]] | None = None
        self._stored = False

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.store.part_size:
            with _answered_as_unavailable():
                self._send_part()

    def _send_part(self) -> None:
        if self._upload_id is None:
            answer = self.store.s3.create_multipart_upload(Bucket=self.store.bucket, Key=self.name)
            self._upload_id = answer["UploadId"]
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-part")
        body = bytes(self._buffer)
        self._buffer.clear()
        self._wait_in_flight()  # this part was filled while the one before it was sent
        self._in_flight = self._sender.submit(self._upload_part, len(self._parts) + 1, body)

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self.store.s3.upload_part(
            Bucket=self.store.bucket, Key=self.name, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self._parts.append(future.result())

    def close(self) -> None:
        with _answered_as_unavailable():
            self._finish()
        self._stored = True

    def _finish(self) -> None:
        s3, bucket = self.store.s3, self.store.bucket
        if self._upload_id is None:
            s3.put_object(Bucket=bucket, Key=self.name, Body=bytes(self._buffer))
            self._buffer = bytearray()
            return
        try:
            if self._buffer:
                self._send_part()
            self._wait_in_flight()
            s3.complete_multipart_upload(
                Bucket=bucket, Key=self.name, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        finally:
            self._sender.shutdown()

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._stored:  # refused after it was stored (an empty file)
            with contextlib.suppress(Exception):
                self.store.discard(self.name)
            return
        if self._upload_id is None:
            return
        with contextlib.suppress(Exception):
            self._wait_in_flight()
        self._sender.shutdown()
        # Parts of an unfinished upload are billed until aborted; a bucket lifecycle rule
        # (README, Deploying) clears those a killed process leaves behind.
        with contextlib.suppress(Exception):
            self.store.s3.abort_multipart_upload(Bucket=self.store.bucket, Key=self.name, UploadId=self._upload_id)


class _ObjectReader:
    """A seekable read-only stream over one object. Reading streams one ranged GET from the
    current position; seeking drops it and the next read starts another."""

    def __init__(self, store: S3BlobStore, key: str, size: int) -> None:
        self.store, self.key, self.size = store, key, size
        self._pos = 0
        self._body: Any = None

    def read(self, size: int = -1) -> bytes:
        if self._pos >= self.size:
            return b""
        if self._body is None:
            answer = self.store.s3.get_object(Bucket=self.store.bucket, Key=self.key, Range=f"bytes={self._pos}-")
            self._body = answer["Body"]
        data = self._body.read(None if size is None or size < 0 else size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return self._pos

    def tell(self) -> int:
        return self._pos

    @property
    def len(self) -> int:
        # What requests_toolbelt's multipart encoder asks of a stream without a file descriptor.
        return self.size - self._pos

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()


class S3BlobStore:
    """Blobs in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2 ...) under `prefix/`.

    The endpoint, region and credentials come from the usual AWS variables (AWS_ENDPOINT_URL,
    AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) through boto3. Objects are written
    with no ACL, so they stay as private as the bucket; no URL to them is ever handed out.
    """

    def __init__(self, url: str, part_size: int = 8 * MiB, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError("BLOB_STORE_URL must look like s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        # S3 refuses parts under 5 MiB (all but the last one).
        self.part_size = max(part_size, 5 * MiB)
        if client is None:
            import boto3

            # A session of its own: boto3's default one is not safe to build clients from in
            # several threads at once (gunicorn's threads on their first upload).
            client = boto3.session.Session().client("s3")
        self.s3 = client

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _blob(self, key: str) -> str:
        return self._key(_checked(key))

    def new_temp(self) -> BlobWriter:
        return _MultipartWriter(self, self._key(f"tmp/upload-{uuid.uuid4().hex}"))

    def commit(self, temp: str, sha256: str) -> str:
        final = self._blob(sha256)
        with _answered_as_unavailable():
            # Same name means same bytes: a blob already there is kept and the new copy dropped.
            if not self._head(final):
                # A copy inside the store: the bytes do not travel through this process again.
                self.s3.copy({"Bucket": self.bucket, "Key": temp}, self.bucket, final)
            self.discard(temp)
        return sha256

    def discard(self, temp: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=temp)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        name = self._blob(key)
        head = self._head(name)
        if head is None:
            raise FileNotFoundError(f"blob {key} is not in s3://{self.bucket}/{self.prefix}")
        reader = _ObjectReader(self, name, head["ContentLength"])
        try:
            yield reader  # type: ignore[misc]  # reads like a binary file, which is all callers use
        finally:
            reader.close()

    def _head(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(self._blob(key)) is not None

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._blob(key))


def make_blob_store(app: Flask) -> BlobStore:
    url = app.config.get("BLOB_STORE_URL")
    if url:
        return S3BlobStore(url, part_size=app.config["BLOB_PART_BYTES"])
    return LocalBlobStore(app.config["BLOB_DIR"])


def blob_store() -> BlobStore:
    from flask import current_app

    store = current_app.extensions.get("blob_store")
    if store is None:
        store = current_app.extensions["blob_store"] = make_blob_store(current_app)
    return store
