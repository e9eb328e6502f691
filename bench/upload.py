"""Upload throughput and web-process memory for one large file, beside in-process hashing.

Starts the Procfile's web process (gunicorn with gunicorn.conf.py, gevent workers) through
scripts/stack.py, on PostgreSQL and Redis when BENCH_DATABASE_URL and BENCH_REDIS_URL are set
(else embedded), registers a user through the API, then uploads a generated file with a streaming
multipart client while sampling the RSS of every gunicorn process. In the same run, interleaved
with the uploads, it hashes the same file in this process. The upload hashes md5+sha1+sha256 and
writes the bytes to disk, so one-pass hashing of the three is its baseline. Targets: at least 0.6
of one-pass hashing (medians), RSS growth of the serving worker at most 64 MiB.

    .venv/bin/python bench/upload.py [--size-mb 500] [--runs 3]

`run()` is what `make bench` calls (bench/run.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
from cryptography.fernet import Fernet
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder

HERE = Path(__file__).resolve().parent
# BENCH_ROOT: measure another checkout's code (its Procfile, its app) with this script.
ROOT = Path(os.environ.get("BENCH_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(HERE.parent / "scripts"))  # stack.py
sys.path.insert(0, str(HERE))  # figures.py

from stack import Stack, free_port  # noqa: E402

MiB = 1024 * 1024
READ = MiB


class _BigBlocks(HTTPAdapter):
    """Sends streamed bodies 1 MiB at a time (urllib3 defaults to 16 KiB), so the client is not
    what limits the measurement."""

    def init_poolmanager(self, connections, maxsize, block=False, **kwargs):
        kwargs.setdefault("blocksize", MiB)
        super().init_poolmanager(connections, maxsize, block=block, **kwargs)


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


def sign_up(url: str) -> dict[str, str]:
    account = {"username": "bench", "email": "bench@example.com", "password": "Correct-Horse-42"}
    r = requests.post(f"{url}/api/auth/register", json=account, timeout=30)
    if r.status_code != 409:  # 409: registered by an earlier run on the same database
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


def _gunicorn_master(stack) -> psutil.Process:
    for pid in stack.pids():
        for child in psutil.Process(pid).children(recursive=True):
            if "gunicorn" in " ".join(child.cmdline()) and "gunicorn" not in " ".join(child.parent().cmdline()):
                return child
    raise RuntimeError("no gunicorn process under the stack")


def _stack_env() -> dict[str, str]:
    env = {"LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "0"}
    if os.environ.get("BENCH_DATABASE_URL"):
        env |= {"DATABASE_URL": os.environ["BENCH_DATABASE_URL"], "SECRET_KEY": secrets.token_hex(32)}
        env["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if os.environ.get("BENCH_REDIS_URL"):
        env["REDIS_URL"] = env["CELERY_BROKER_URL"] = os.environ["BENCH_REDIS_URL"]
    return env


def measure(size: int, runs: int) -> list[dict]:
    """Per run: the upload's MiB/s and memory, then one-pass hashing's MiB/s, interleaved."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        path = workdir / "big.bin"
        make_file(path, size)
        expected = hash_file_digest(path)  # also brings the file into the page cache for every reader
        with (
            (workdir / "stack.log").open("w") as log,
            Stack(workdir / "instance", log, web_port=free_port(), vt_port=free_port(), emulator_args=["--quiet"],
                  env=_stack_env(), root=ROOT, entries=("web", "worker")) as stack,
        ):  # fmt: skip
            headers = sign_up(stack.web_url)
            session = requests.Session()
            session.mount("http://", _BigBlocks())
            warm = workdir / "warm.bin"
            warm.write_bytes(os.urandom(64 * 1024))
            for _ in range(4):  # reach every worker once, so lazy start-up is not counted as upload memory
                upload(session, stack.web_url, headers, warm)
            master = _gunicorn_master(stack)
            results = []
            for _ in range(runs):
                with RssSampler(master) as sampler:
                    seconds, answer = timed(lambda: upload(session, stack.web_url, headers, path))
                assert answer["hash_sha256"] == expected and answer["file_size"] == size, answer
                pid, before, peak = sampler.worst_growth()
                session.delete(
                    f"{stack.web_url}/api/files/{answer['id']}", headers=headers, timeout=60
                ).raise_for_status()
                hashing, digest = timed(lambda: hash_one_pass(path))
                assert digest == expected
                results.append(
                    {"upload": size / MiB / seconds, "hash": size / MiB / hashing, "pid": pid, "before": before,
                     "peak": peak, "peak_total": sampler.peak_total}
                )  # fmt: skip
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(size_mb: int = 500, runs: int = 3) -> list[dict]:
    from figures import figure

    results = measure(size_mb * MiB, runs)
    upload_rate = statistics.median(r["upload"] for r in results)
    hash_rate = statistics.median(r["hash"] for r in results)
    growth = max(r["peak"] - r["before"] for r in results) / MiB
    ratio = upload_rate / hash_rate
    return [
        {
            **figure(f"ingest: {size_mb} MiB upload through gunicorn, vs one-pass md5+sha1+sha256", "MiB/s",
                     upload_rate, baseline=hash_rate, target="ratio >= 0.6"),
            "met": ratio >= 0.6,
        },
        figure("ingest: RSS growth of the serving worker", "MiB", growth, target="<= 64", met=growth <= 64),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="uploads and hashings of the file, interleaved")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = measure(args.size_mb * MiB, args.runs)
    print(f"\nfile: {args.size_mb} MiB   python {sys.version.split()[0]}   cpus {os.cpu_count()}   load {load:.2f}\n")
    print(f"{'run':<5} {'upload MiB/s':>13} {'one-pass hash MiB/s':>20} {'ratio':>6}  serving worker RSS (every 5 ms)")
    for i, r in enumerate(results, 1):
        print(
            f"{i:<5} {r['upload']:13.1f} {r['hash']:20.1f} {r['upload'] / r['hash']:6.2f}  "
            f"{r['pid']}: {r['before'] / MiB:.0f} -> {r['peak'] / MiB:.0f} MiB "
            f"(+{(r['peak'] - r['before']) / MiB:.1f});"
            f" all gunicorn processes {r['peak_total'] / MiB:.0f} MiB"
        )
    upload_rate = statistics.median(r["upload"] for r in results)
    hash_rate = statistics.median(r["hash"] for r in results)
    print(f"median ratio upload / one-pass hash: {upload_rate / hash_rate:.2f} (load now {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
