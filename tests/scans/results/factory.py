"""Scans written straight into the database, the way the pipeline leaves them: the reading side
needs no VirusTotal conversation to be tested."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

from scanner.extensions import db
from scanner.files.models import File
from scanner.scans.models import EngineResult, Scan

COUNT_COLUMNS = ("malicious", "suspicious", "undetected", "harmless", "timeout", "confirmed_timeout", "failure")
BASE_DATE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make_file(
    owner, filename: str = "sample.exe", content: bytes | None = None, mime_type: str = "application/x-dosexec"
) -> File:
    content = content if content is not None else os.urandom(64)
    file = File(
        user_id=uuid.UUID(str(owner.id)),
        filename=filename,
        file_size=len(content),
        mime_type=mime_type,
        md5=hashlib.md5(content).hexdigest(),  # noqa: S324  VirusTotal's identifier, not a security use
        sha1=hashlib.sha1(content).hexdigest(),  # noqa: S324
        sha256=hashlib.sha256(content).hexdigest(),
        blob_key=f"test/{uuid.uuid4().hex}",
    )
    db.session.add(file)
    db.session.flush()
    return file


def make_scan(
    owner,
    file: File | None = None,
    *,
    status: str = "completed",
    scan_date: datetime | None = BASE_DATE,
    engines: list[tuple[str, str, str | None]] | None = None,
    created_at: datetime | None = None,
    error: str | None = None,
    **counts: int,
) -> Scan:
    """A scan of `file` (a new one by default). `engines` is [(name, category, result)]; the counts
    default to what the engines say, and any count given overrides it."""
    file = file or make_file(owner)
    engines = engines or []
    finished = status == "completed"
    tallies = {column: 0 for column in COUNT_COLUMNS} | {"type_unsupported": 0}
    for _, category, _ in engines:
        tallies[category.replace("-", "_")] += 1
    tallies.update(counts)
    judged = tallies["malicious"] + tallies["suspicious"] + tallies["undetected"] + tallies["harmless"]
    scan = Scan(
        user_id=uuid.UUID(str(owner.id)),
        file_id=file.id,
        status=status,
        stage="done" if finished else ("failed" if status == "failed" else "waiting_for_analysis"),
        error=error,
        **(tallies if finished else {}),
        engines_total=sum(tallies.values()) if finished else None,
        detection_ratio=f"{tallies['malicious']}/{judged}" if finished else None,
        scan_date=scan_date if finished else None,
        completed_at=scan_date if finished else None,
        created_at=created_at or (scan_date or BASE_DATE) - timedelta(minutes=1),
    )
    db.session.add(scan)
    db.session.flush()
    for name, category, result in engines:
        db.session.add(
            EngineResult(
                scan_id=scan.id,
                engine_name=name,
                engine_version="1.0",
                category=category,
                result=result,
                method="blacklist",
                engine_update="20240301",
            )
        )
    db.session.flush()
    return scan


def engines(
    malicious: int = 0, suspicious: int = 0, undetected: int = 0, **others: int
) -> list[tuple[str, str, str | None]]:
    """A panel of engines named Engine-000, Engine-001, ... with the given categories."""
    categories = ["malicious"] * malicious + ["suspicious"] * suspicious + ["undetected"] * undetected
    for category, count in others.items():
        categories += [category.replace("_", "-")] * count
    labels = {"malicious": "Trojan.Generic", "suspicious": "Suspicious.Heur"}
    return [(f"Engine-{i:03d}", category, labels.get(category)) for i, category in enumerate(categories)]
