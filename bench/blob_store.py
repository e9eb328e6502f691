"""One large file through each blob store: the local disk (the baseline) and an S3-compatible
bucket (moto in server mode on loopback), in one run.

For each store it serves the real app with gunicorn (gunicorn.conf.py) and a real Celery worker
on the embedded defaults, the VirusTotal emulator as VirusTotal, uploads a generated file through
the API with a streaming client while sampling the RSS of every gunicorn process, then samples
the worker while it streams the file from the store to the emulator. Prints MB/s and peak RSS
growth per process, and the object store's figures as a ratio of the local store's. A third row
times the bucket's server-side copy alone (what naming the object by its sha256 costs).

    .venv/bin/python bench/blob_store.py [--size-mb 200]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from upload import MiB, RssSampler, _BigBlocks, free_port, hash_file_digest, make_file, sign_up, timed, upload

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.s3 import S3Server  # noqa: E402

EMULATOR_MODULE = "vt_emulator"
BIN = Path(sys.executable).parent


class Service:
    """gunicorn + one Celery worker on one instance folder, with `settings` on top."""

    def __init__(self, workdir: Path, settings: dict[str, str]) -> None:
        workdir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
        self.env |= {"INSTANCE_DIR": str(workdir / "instance"), "LOG_LEVEL": "WARNING", **settings}
        self.env |= {"SCAN_POLL_INTERVALS": "0.5", "RATELIMIT_ENABLED": "0", "BROKER_POLL_SECONDS": "0.1"}
        for name in ("SCANNER_CONFIG", "BLOB_DIR"):
            self.env.pop(name, None)
        subprocess.run(
            [BIN / "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=self.env, check=True, capture_output=True
        )
        self.logs = [(workdir / "web.log").open("w"), (workdir / "worker.log").open("w")]
        self.web = subprocess.Popen(
            [BIN / "gunicorn", "wsgi:app", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=self.env, stdout=self.logs[0], stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.worker = subprocess.Popen(
            [BIN / "celery", "-A", "worker", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=self.logs[1], stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/api/health/ready", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.web.poll() is not None or self.worker.poll() is not None:
                raise RuntimeError(f"the service did not start; see {workdir}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            proc.terminate()
        for proc in (self.web, self.worker):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self.logs:
            log.close()


def scan_stage(session: requests.Session, url: str, headers: dict[str, str], scan_id: str) -> dict:
    return session.get(f"{url}/api/scan/{scan_id}/status", headers=headers, timeout=30).json()


def measure(service: Service, path: Path, vt_url: str, vt_key: str) -> dict[str, float]:
    headers = sign_up(service.url)
    budget = {"per_minute": 1000, "per_day": 100000}
    r = requests.post(
        f"{service.url}/api/keys/",
        json={"name": "emulator", "key_value": vt_key, **budget},
        headers=headers,
        timeout=30,
    )
    r.raise_for_status()
    session = requests.Session()
    session.mount("http://", _BigBlocks())
    warm = path.with_name("warm.bin")
    warm.write_bytes(os.urandom(64 * 1024))
    upload(session, service.url, headers, warm)  # lazy start-up is not counted as upload memory
    scan = upload(session, service.url, headers, warm)["scan"]["scan_id"]
    while scan_stage(session, service.url, headers, scan)["status"] not in ("completed", "failed"):
        time.sleep(0.2)  # the worker has started once too

    size = path.stat().st_size
    worker_sampler = RssSampler(psutil.Process(service.worker.pid), interval=0.02).__enter__()
    with RssSampler(psutil.Process(service.web.pid)) as web_sampler:
        seconds, answer = timed(lambda: upload(session, service.url, headers, path))
    scan = answer["scan"]["scan_id"]
    started = time.perf_counter()
    # Once VirusTotal has the file, the scan waits for its analysis.
    while (status := scan_stage(session, service.url, headers, scan))["stage"] != "waiting_for_analysis":
        if status["status"] in ("completed", "failed"):
            raise RuntimeError(f"the scan ended before it waited for an analysis: {status}")
        time.sleep(0.05)
    worker_seconds = time.perf_counter() - started
    worker_sampler.__exit__(None, None, None)
    while (status := scan_stage(session, service.url, headers, scan))["status"] != "completed":
        if status["status"] == "failed":
            raise RuntimeError(f"the scan failed: {status}")
        time.sleep(0.2)
    known = requests.get(f"{vt_url}/files/{answer['hash_sha256']}", headers={"x-apikey": vt_key}, timeout=30)
    assert known.status_code == 200, "VirusTotal did not get the file"
    _, web_before, web_peak = web_sampler.worst_growth()
    _, worker_before, worker_peak = worker_sampler.worst_growth()
    return {
        "upload MB/s": size / MiB / seconds,
        "web peak RSS growth MiB": (web_peak - web_before) / MiB,
        "to VirusTotal MB/s": size / MiB / worker_seconds,
        "worker peak RSS growth MiB": (worker_peak - worker_before) / MiB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MiB")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-blob-store-"))
    vt_key = secrets.token_hex(32)
    emulator_port = free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", EMULATOR_MODULE, "--port", str(emulator_port), "--quiet",
         "--key", f"{vt_key}:1000:100000", "--queued-seconds", "0.5", "--progress-seconds", "0.5"],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    s3 = S3Server(workdir / "s3.log")
    results: dict[str, dict[str, float]] = {}
    try:
        common = {"VT_API_URL": f"http://127.0.0.1:{emulator_port}/api/v3"}
        bucket = s3.new_bucket()
        stores = {
            "local disk": {},
            "S3 bucket (moto)": {**s3.env, "BLOB_STORE_URL": f"s3://{bucket}/blobs"},
        }
        for name, settings in stores.items():
            # Bytes of its own for each store, or VirusTotal would know the second file already.
            path = workdir / f"{name.split()[0]}.bin"
            make_file(path, args.size_mb * MiB)
            hash_file_digest(path)  # brings the file into the page cache
            service = Service(workdir / name.split()[0], {**common, **settings})
            try:
                results[name] = measure(service, path, common["VT_API_URL"], vt_key)
            finally:
                service.stop()
        client = s3.client()
        [blob] = [o for o in client.list_objects_v2(Bucket=bucket, Prefix="blobs/")["Contents"] if o["Size"] > MiB]
        seconds, _ = timed(lambda: client.copy({"Bucket": bucket, "Key": blob["Key"]}, bucket, "copy-alone"))
    finally:
        s3.stop()
        emulator.terminate()
        emulator.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{args.size_mb} MiB file, web and worker on one machine, gunicorn.conf.py defaults\n")
    columns = list(next(iter(results.values())))
    print(f"{'store':<20}" + "".join(f"{c:>28}" for c in columns))
    for name, figures in results.items():
        print(f"{name:<20}" + "".join(f"{figures[c]:>28.1f}" for c in columns))
    local, bucket_figures = results["local disk"], results["S3 bucket (moto)"]
    print(
        f"{'bucket / local':<20}"
        + "".join(f"{bucket_figures[c] / local[c]:>27.2f}x" if local[c] else f"{'-':>28}" for c in columns)
    )
    print(f"\nserver-side copy of the {args.size_mb} MiB object alone (sha256 naming): {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
