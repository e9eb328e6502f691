"""Blob storage for uploaded files, addressed by sha256.

The pipeline reads blobs only through a `BlobStore`, so a store every machine can reach (an
S3-compatible bucket) can replace the local file system for multi-machine deployments.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore(Protocol):
    def new_temp(self) -> tuple[BinaryIO, str]: ...
    def commit(self, temp_path: str, sha256: str) -> str: ...
    def discard(self, temp_path: str) -> None: ...
    def local_path(self, key: str) -> contextlib.AbstractContextManager[str]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class LocalBlobStore:
    """Blobs under one directory outside any served folder, owner-only permissions."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def _path(self, key: str) -> Path:
        if not _SHA256.match(key):
            raise ValueError("blob keys are sha256 hex digests")
        return self.root / key[:2] / key[2:4] / key

    def new_temp(self) -> tuple[BinaryIO, str]:
        fd, path = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb"), path

    def commit(self, temp_path: str, sha256: str) -> str:
        final = self._path(sha256)
        for directory in (final.parent.parent, final.parent):  # mkdir(parents=True) ignores mode
            directory.mkdir(exist_ok=True, mode=0o700)
        # Same name means same bytes: replacing an existing blob is harmless and atomic.
        os.replace(temp_path, final)
        return sha256

    def discard(self, temp_path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_path)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[str]:
        path = self._path(key)
        if not path.exists():
            raise FileNotFoundError(f"blob {key} is missing")
        yield str(path)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def blob_store() -> BlobStore:
    from flask import current_app

    store = current_app.extensions.get("blob_store")
    if store is None:
        store = current_app.extensions["blob_store"] = LocalBlobStore(current_app.config["BLOB_DIR"])
    return store
