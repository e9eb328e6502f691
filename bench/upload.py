"""Upload throughput and web-process memory for one large file, beside in-process hashing.

Serves the real app with gunicorn (gthread, gunicorn.conf.py) on a free loopback port, with the
embedded defaults in a temporary INSTANCE_DIR, registers a user through the API, then uploads a
generated file with a streaming multipart client while sampling the RSS of every gunicorn
process. In the same run it hashes the same file in this process three ways. The upload hashes
md5+sha1+sha256 in one pass and writes the bytes to disk, so one-pass hashing is its baseline.

    .venv/bin/python bench/upload.py [--size-mb 500] [--runs 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
READ = MiB


class _BigBlocks(HTTPAdapter):
    """Sends streamed bodies 1 MiB at a time (urllib3 defaults to 16 KiB), so the client is not
    what limits the measurement."""

    def init_poolmanager(self, connections, maxsize, block=False, **kwargs):
        kwargs.setdefault("blocksize", MiB)
        super().init_poolmanager(connections, maxsize, block=block, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(0, size, MiB):
            piece = i.to_bytes(8, "big") + block[8:]
            out.write(piece[: min(MiB, size - i)])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def hash_one_pass(path: Path) -> str:
    hashes = [hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()]
    with path.open("rb") as f:
        while chunk := f.read(READ):
            for h in hashes:
                h.update(chunk)
    return hashes[2].hexdigest()


def hash_three_passes(path: Path) -> str:
    digests = []
    for name in ("md5", "sha1", "sha256"):
        h = hashlib.new(name, usedforsecurity=False)
        with path.open("rb") as f:
            while chunk := f.read(READ):
                h.update(chunk)
        digests.append(h.hexdigest())
    return digests[2]


def hash_file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class RssSampler:
    """Samples the RSS of the gunicorn master and its workers every few milliseconds."""

    master: psutil.Process
    interval: float = 0.005
    peak: dict[int, int] = field(default_factory=dict)
    base: dict[int, int] = field(default_factory=dict)
    peak_total: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def processes(self) -> list[psutil.Process]:
        return [self.master, *self.master.children(recursive=True)]

    def sample(self) -> dict[int, int]:
        seen = {}
        for p in self.processes():
            try:
                seen[p.pid] = p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return seen

    def __enter__(self) -> RssSampler:
        self.base = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = self.sample()
            for pid, rss in seen.items():
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self.peak_total = max(self.peak_total, sum(seen.values()))
            self._stop.wait(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def worst_growth(self) -> tuple[int, int, int]:
        """(pid, RSS before, peak RSS) of the process whose RSS rose most: the one that served."""
        pid = max(self.peak, key=lambda p: self.peak[p] - self.base.get(p, self.peak[p]))
        return pid, self.base.get(pid, self.peak[pid]), self.peak[pid]


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        instance = workdir / "instance"
        self.env = {
            **os.environ,
            "INSTANCE_DIR": str(instance),
            "LOG_LEVEL": "WARNING",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SCANNER_CONFIG", "BLOB_DIR"):
            self.env.pop(name, None)
        subprocess.run(  # the schema, as the models define it
            [sys.executable, "-c", "from wsgi import app\nfrom scanner.extensions import db\n"
             "with app.app_context(): db.create_all()"],
            cwd=ROOT, env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        self.log = (workdir / "gunicorn.log").open("w")
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.proc = subprocess.Popen(
            [gunicorn, "wsgi:app", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited; see its log")
            try:
                if requests.get(f"{self.url}/api/health", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError("gunicorn did not answer /api/health")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def sign_up(url: str) -> dict[str, str]:
    account = {"username": "bench", "email": "bench@example.com", "password": "Correct-Horse-42"}
    r = requests.post(f"{url}/api/auth/register", json=account, timeout=30)
    r.raise_for_status()
    r = requests.post(f"{url}/api/auth/login", json={k: account[k] for k in ("username", "password")}, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(session: requests.Session, url: str, headers: dict[str, str], path: Path) -> dict:
    with path.open("rb") as f:
        encoder = MultipartEncoder(fields={"file": (path.name, f, "application/octet-stream")})
        r = session.post(
            f"{url}/api/files/upload",
            data=encoder,
            headers={**headers, "Content-Type": encoder.content_type},
            timeout=600,
        )
    if r.status_code != 201:
        raise RuntimeError(f"upload answered {r.status_code}: {r.text[:500]}")
    return r.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=1, help="uploads and hashings of the file, each reported")
    args = parser.parse_args()
    size = args.size_mb * MiB

    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    server = None
    try:
        path = workdir / "big.bin"
        make_file(path, size)
        expected = hash_file_digest(path)  # also brings the file into the page cache for every reader
        server = Server(workdir)
        server.wait_ready()
        headers = sign_up(server.url)
        session = requests.Session()
        session.mount("http://", _BigBlocks())
        warm = workdir / "warm.bin"
        warm.write_bytes(os.urandom(64 * 1024))
        for _ in range(4):  # reach every worker once, so lazy start-up is not counted as upload memory
            upload(session, server.url, headers, warm)

        rows: list[tuple[str, float, str]] = []
        upload_rates, one_pass_rates = [], []
        for run in range(1, args.runs + 1):
            with RssSampler(psutil.Process(server.proc.pid)) as sampler:
                seconds, answer = timed(lambda: upload(session, server.url, headers, path))
            assert answer["hash_sha256"] == expected and answer["file_size"] == size, answer
            pid, before, peak = sampler.worst_growth()
            rate = size / MiB / seconds
            upload_rates.append(rate)
            memory = f"worker {pid}: {before / MiB:.0f} -> {peak / MiB:.0f} MiB (+{(peak - before) / MiB:.1f})"
            rows.append((f"upload through gunicorn, run {run}", rate, memory))
            rows.append(
                (
                    f"  all gunicorn processes, peak total, run {run}",
                    float("nan"),
                    f"{sampler.peak_total / MiB:.0f} MiB",
                )
            )
            r = session.delete(f"{server.url}/api/files/{answer['id']}", headers=headers, timeout=60)
            r.raise_for_status()

            for label, fn in (
                ("md5+sha1+sha256, one pass", hash_one_pass),
                ("md5, sha1, sha256, three passes", hash_three_passes),
                ("hashlib.file_digest sha256 only", hash_file_digest),
            ):
                seconds, digest = timed(lambda fn=fn: fn(path))
                assert digest == expected
                rows.append((f"{label}, run {run}", size / MiB / seconds, ""))
                if fn is hash_one_pass:
                    one_pass_rates.append(size / MiB / seconds)

        print(f"\nfile: {size / MiB:.0f} MiB   python {sys.version.split()[0]}   cpus {os.cpu_count()}\n")
        print(f"{'measure':<52} {'MiB/s':>9}  peak RSS (sampled every 5 ms)")
        print("-" * 110)
        for label, rate, memory in rows:
            shown = f"{rate:9.1f}" if rate == rate else " " * 9
            print(f"{label:<52} {shown}  {memory}")
        best_upload, best_hash = max(upload_rates), max(one_pass_rates)
        print("-" * 110)
        print(f"{'ratio upload / one-pass hash (best of each)':<52} {best_upload / best_hash:9.2f}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
