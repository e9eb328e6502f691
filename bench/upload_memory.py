"""Streaming upload vs the naive one: time and peak memory for one large file.

Uploads a file (200 MiB by default, random bytes, in a temp dir) to an in-process VirusTotal
emulator with no injected latency, through the one-time upload URL, each upload in a fresh
subprocess so peak RSS (getrusage ru_maxrss) belongs to that upload alone:

- streaming: `VirusTotalClient.upload_file` (MultipartEncoder reading from disk);
- naive: `requests.post(url, files={"file": open(path, "rb").read()})`.

    .venv/bin/python bench/upload_memory.py [--size-mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024

# Runs in the measured process: argv = method, base URL, key, path. The baseline is the resident
# set right before the upload (psutil), not the peak so far, which may be an import-time peak
# that would hide the upload's own; the peak is ru_maxrss (KiB on Linux) right after. So the
# reported growth is an upper bound.
CHILD = """
import json, resource, sys, time
import psutil, requests
from scanner.virustotal.client import VirusTotalClient

method, base_url, key, path = sys.argv[1:]
api = VirusTotalClient(key, base_url=base_url)
api.get_ip("8.8.8.8")  # warm up imports and the connection pool for both methods alike
before = psutil.Process().memory_info().rss // 1024
start = time.perf_counter()
if method == "streaming":
    api.upload_file(path)
else:
    headers = {"x-apikey": key}
    url = requests.get(base_url + "/files/upload_url", headers=headers, timeout=60).json()["data"]
    with open(path, "rb") as handle:
        answer = requests.post(url, files={"file": handle.read()}, headers=headers, timeout=600)
    answer.raise_for_status()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "growth_kib": peak - before}))
"""


def make_file(directory: str, size: int) -> Path:
    path = Path(directory) / "upload.bin"
    with path.open("wb") as handle:
        for _ in range(size // MiB):
            handle.write(os.urandom(MiB))
    return path


# Linux carries a process's peak RSS into ru_maxrss of what it spawns, across exec: a child of a
# big process (a test runner) would report the parent's peak. A small launcher in between keeps
# ru_maxrss about the measured process alone.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def measure(method: str, base_url: str, key: str, path: Path) -> dict[str, float]:
    """Upload `path` in a fresh process with `method` ("streaming" or "naive"); returns the
    upload's seconds and its peak RSS growth in KiB."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", CHILD, method, base_url, key, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{method} upload failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MiB (over 30 uses upload_url)")
    parser.add_argument("--runs", type=int, default=3, help="runs per method, interleaved; best time, worst memory")
    args = parser.parse_args()
    size = args.size_mb * MiB

    sys.path.insert(0, str(ROOT))
    from scanner.virustotal.client import close_session
    from vt_emulator import Emulator

    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as directory, Emulator() as emulator:
        emulator.add_key(key, per_minute=1000, per_day=100000)
        path = make_file(directory, size)
        runs: dict[str, list[dict[str, float]]] = {"streaming": [], "naive": []}
        for _ in range(args.runs):
            for method, results in runs.items():
                results.append(measure(method, emulator.url, key, path))
        uploads = emulator.counts(key).get("POST /_upload", 0)
    close_session()
    if uploads != 2 * args.runs:
        raise SystemExit(f"expected {2 * args.runs} uploads at the emulator, saw {uploads}")
    figures = {
        method: {
            "seconds": min(run["seconds"] for run in results),
            # RSS counters lag by a few pages, so a flat upload can read as slightly negative.
            "growth_kib": max(0, *(run["growth_kib"] for run in results)),
        }
        for method, results in runs.items()
    }

    print(f"Upload of a {args.size_mb} MiB file to the local emulator, each run in its own process")
    print(f"best time and largest peak RSS growth of {args.runs} runs per method")
    print(f"{'method':<10} {'seconds':>8} {'MiB/s':>8} {'peak RSS growth MiB':>20}")
    for method, figure in figures.items():
        growth = figure["growth_kib"] / 1024
        print(f"{method:<10} {figure['seconds']:>8.2f} {args.size_mb / figure['seconds']:>8.1f} {growth:>20.1f}")
    streaming, naive = figures["streaming"], figures["naive"]
    floor_kib = 1024  # below 1 MiB the growth is measurement noise; floor it so the ratio means something
    print(
        f"ratio naive/streaming: time {naive['seconds'] / streaming['seconds']:.2f}x, "
        f"peak RSS growth {naive['growth_kib'] / max(streaming['growth_kib'], floor_kib):.0f}x"
        + (" (streaming growth floored at 1 MiB)" if streaming["growth_kib"] < floor_kib else "")
    )


if __name__ == "__main__":
    main()
