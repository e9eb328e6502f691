"""`make load`: the service under streams and a mixed load, bounded, with one table of figures.

Starts what the Procfile runs in production (the `web` process, then the `worker` process, each
through honcho) on PostgreSQL and Redis, with the VirusTotal emulator, in a database of its own
next to DATABASE_URL's. Then:

1. signs up USERS analysts (each adds a VirusTotal key and uploads a file, whose scan waits: no
   worker runs yet) and warms the indicator cache;
2. opens STREAMS scan streams at once, spread over the users (`/api/stream/scans/{id}`);
3. starts the worker, so every followed scan moves on and finishes, and meanwhile runs the mixed
   load at a fixed arrival rate (RATE requests/s for DURATION s): scan status reads, history pages,
   cached indicator lookups, uploads, health probes;
4. waits for every stream to end and the worker's queue to drain, prints the table and stops all.

Pass: no error (any status >= 400 or a failed request, streams included), p99 of the non-stream
requests under 250 ms, and every stream got its first event, a heartbeat, a status change from
the worker and `complete`. Exit status 1 otherwise.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/load/load.py [--streams 500 --users 200 --rate 100 --duration 60]

`--streams 0 --duration 600` is the sustained mixed load without streams. Redis: REDIS_URL's
database for the cache and the one below it for the broker; both are emptied first.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The emulator's module: the one place that names it.
VT_EMULATOR_MODULE = os.environ.get("VT_EMULATOR_MODULE", "vt_emulator")
PASSWORD = "Load-Test-Password-42"
CACHED_IOCS = ("8.8.8.8", "1.1.1.1", "example.com", "44d88612fea8a8f36de82e1278abb02f")
P99_LIMIT_MS = 250.0
MIX = (("status", 45), ("history", 20), ("cached lookup", 25), ("upload", 5), ("health", 5))


@dataclass
class Analyst:
    username: str
    token: str
    scan_id: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class StreamResult:
    status_code: int = 0
    first_event_ms: float | None = None
    statuses: int = 0
    heartbeats: int = 0
    complete: bool = False
    error: str = ""


def free_port(start: int, end: int) -> int:
    import socket

    for port in range(start, end):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}-{end}")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def recreate_database(url: str) -> str:
    """A database of its own next to `url`'s, so the run never touches anyone's data."""
    parsed = urlparse(url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"{parsed.path.strip('/') or 'scanner'}_load"
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl()


def broker_url(redis_url: str) -> str:
    parsed = urlparse(redis_url)
    index = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{index - 1 if index > 0 else index + 1}").geturl()


class Services:
    """The emulator and the Procfile's processes, each in a process group of its own."""

    def __init__(self, env: dict[str, str], log_path: Path, root: Path = ROOT) -> None:
        self.env = env
        self.root = root
        self.bin = root / ".venv" / "bin"
        self.log = open(log_path, "w")  # noqa: SIM115  closed in stop()
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str]) -> None:
        self.procs.append(
            subprocess.Popen(  # noqa: S603
                args, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def run(self, args: list[str]) -> None:
        subprocess.run(args, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, check=True)  # noqa: S603

    def procfile(self, *names: str) -> None:
        self.start([str(self.bin / "honcho"), "start", "-f", "Procfile", *names])

    def emulator(self, port: int, vt_key: str, *options: str) -> None:
        self.start([str(self.bin / "python"), "-m", VT_EMULATOR_MODULE, "--port", str(port), "--quiet",
                    "--key", f"{vt_key}:1000000:100000000", *options])  # fmt: skip

    def migrate(self) -> None:
        self.run([str(self.bin / "flask"), "--app", "wsgi", "db", "upgrade"])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.log.close()


def service_env(database_url: str, redis_url: str, vt_port: int, web_port: int, root: Path = ROOT) -> dict[str, str]:
    """The environment of every process the run starts, as a deployment would set it."""
    env = {
        **os.environ,
        "PATH": f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url(redis_url),
        "INSTANCE_DIR": tempfile.mkdtemp(prefix="scanner-load-"),
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "VT_API_URL": f"http://127.0.0.1:{vt_port}/api/v3",
        "PORT": str(web_port),
        "SCAN_POLL_INTERVALS": "2,2,4",
        # Sign-ups are setup, not the load: argon2id at a low cost, and one address may sign in
        # many accounts at once.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_PARALLELISM": "1",
        "AUTH_RATE_LIMIT": "100000 per minute",
        "LOGIN_MAX_FAILURES_PER_IP": "100000",
        "LOG_LEVEL": "WARNING",
    }
    for url in (redis_url, env["CELERY_BROKER_URL"]):
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    return env


def wait_until(check, what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        gevent.sleep(0.3)
    raise SystemExit(f"gave up waiting for {what}")


def sign_up(api: str, n: int, vt_key: str) -> Analyst:
    username = f"load{n:04d}"
    creds = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    r = requests.post(f"{api}/auth/register", json=creds, timeout=60)
    assert r.status_code == 201, r.text
    r = requests.post(f"{api}/auth/login", json={"username": username, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200, r.text
    analyst = Analyst(username, r.json()["access_token"])
    key = {"name": "load", "key_value": vt_key, "per_minute": 100000, "per_day": 10000000}
    r = analyst.session.post(f"{api}/keys/", json=key, headers=analyst.headers, timeout=60)
    assert r.status_code == 201, r.text
    r = analyst.session.post(
        f"{api}/files/upload", files={"file": ("sample.bin", os.urandom(2048))}, headers=analyst.headers, timeout=60
    )
    assert r.status_code == 201, r.text
    analyst.scan_id = r.json()["scan"]["scan_id"]
    return analyst


def follow(url: str, analyst: Analyst, opened_at: float, result: StreamResult, read_timeout: float) -> None:
    """Read one stream to its end; every event and heartbeat is counted."""
    try:
        with requests.get(url, headers=analyst.headers, stream=True, timeout=(10, read_timeout)) as response:
            result.status_code = response.status_code
            if response.status_code != 200:
                result.error = response.text[:200]
                return
            event = None
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith(":"):
                    result.heartbeats += 1
                elif line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line == "" and event:
                    if result.first_event_ms is None:
                        result.first_event_ms = (time.monotonic() - opened_at) * 1000
                    result.statuses += event == "status"
                    if event == "complete":
                        result.complete = True
                        return
                    if event in ("timeout", "unauthorized"):
                        result.error = f"ended with {event}"
                        return
                    event = None
    except requests.RequestException as error:
        result.error = f"{type(error).__name__}: {error}"[:200]


class MixedLoad:
    """Requests at a fixed arrival rate, whatever the latency (an open model: slow answers do
    not slow the offered load down)."""

    def __init__(self, api: str, analysts: list[Analyst]) -> None:
        self.api = api
        self.analysts = analysts
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        kinds, weights = zip(*MIX, strict=True)
        self.kinds, self.weights = kinds, weights

    def one(self, kind: str) -> None:
        analyst = random.choice(self.analysts)
        # A connection per request: a kept-alive one may be closed by the server just as it is reused.
        api, headers, session = self.api, analyst.headers, requests
        started = time.monotonic()
        try:
            if kind == "status":
                r = session.get(f"{api}/scan/{analyst.scan_id}/status", headers=headers, timeout=30)
            elif kind == "history":
                page = random.randint(1, 3)
                r = session.get(f"{api}/scan/results?page={page}&per_page=20", headers=headers, timeout=30)
            elif kind == "cached lookup":
                r = session.post(
                    f"{api}/check_ioc", json={"ioc": random.choice(CACHED_IOCS)}, headers=headers, timeout=30
                )
            elif kind == "upload":
                files = {"file": ("sample.bin", os.urandom(random.randint(1024, 65536)))}
                r = session.post(f"{api}/files/upload", files=files, headers=headers, timeout=30)
            else:
                r = session.get(f"{api}/health", timeout=30)
            ok = r.status_code < 400
            detail = f"{r.status_code} {r.text[:160]}"
        except requests.RequestException as error:
            ok, detail = False, f"{type(error).__name__}: {error}"[:200]
        self.latencies[kind].append((time.monotonic() - started) * 1000)
        if not ok:
            self.errors[kind] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{kind}: {detail}")

    def run(self, rate: float, duration: float) -> None:
        pool = gevent.pool.Pool(2000)
        started = time.monotonic()
        for n in itertools.count():
            due = started + n / rate
            if due - started >= duration:
                break
            gevent.sleep(max(0.0, due - time.monotonic()))
            pool.spawn(self.one, random.choices(self.kinds, self.weights)[0])
        pool.join(timeout=60)


def queue_drained(env: dict[str, str], database_url: str) -> bool:
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    try:
        queued = broker.llen("celery")
    finally:
        broker.close()
    with psycopg.connect(database_url) as conn:
        unfinished = "SELECT count(*) FROM scans WHERE status NOT IN ('completed', 'failed', 'not_found')"
        (scanning,) = conn.execute(unfinished).fetchone()
    return queued == 0 and scanning == 0


def report(args, load: MixedLoad, streams: list[StreamResult], figures: dict) -> bool:
    rows = []
    everything: list[float] = []
    for kind, _ in MIX:
        values = load.latencies.get(kind, [])
        everything += values
        rows.append((kind, values, load.errors[kind]))
    rows.append(("all non-stream", everything, sum(load.errors.values())))
    print(f"\n{'requests':<16}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values, errors in rows:
        print(
            f"{kind:<16}{len(values):>8}{errors:>8}{percentile(values, 50):>9.1f}{percentile(values, 95):>9.1f}"
            f"{percentile(values, 99):>9.1f}{max(values, default=float('nan')):>9.1f}"
        )
    p99 = percentile(everything, 99)
    ok = sum(load.errors.values()) == 0 and (not everything or p99 < P99_LIMIT_MS)
    if streams:
        good = [s for s in streams if s.status_code == 200 and s.statuses >= 1 and s.heartbeats >= 1 and s.complete]
        first = [s.first_event_ms for s in streams if s.first_event_ms is not None]
        print(f"\n{'streams':<40}{'value':>10}")
        print(f"{'opened at once':<40}{len(streams):>10}")
        print(f"{'answered 200':<40}{sum(s.status_code == 200 for s in streams):>10}")
        print(f"{'first event p50 / p99 ms':<40}{percentile(first, 50):>5.0f} /{percentile(first, 99):>5.0f}")
        print(f"{'with a status change from the worker':<40}{sum(s.statuses >= 2 for s in streams):>10}")
        print(f"{'with heartbeats':<40}{sum(s.heartbeats >= 1 for s in streams):>10}")
        beats = [s.heartbeats for s in streams]
        print(f"{'heartbeats per stream, min / max':<40}{min(beats):>5} /{max(beats):>5}")
        print(f"{'ended with complete':<40}{sum(s.complete for s in streams):>10}")
        print(f"{'failed (error, refused, cut)':<40}{len(streams) - len(good):>10}")
        errors = [s.error or f"status {s.status_code}" for s in streams if s not in good]
        for sample in errors[:5]:
            print(f"  e.g. {sample}")
        ok = ok and len(good) == len(streams)
    for sample in load.error_samples:
        print(f"  error e.g. {sample}")
    print(f"\n{'run':<40}{'value':>10}")
    for name, value in figures.items():
        print(f"{name:<40}{value:>10}")
    verdict = "PASS" if ok else "FAIL"
    print(f"\n{verdict}: errors={sum(load.errors.values())}, non-stream p99={p99:.1f} ms (limit {P99_LIMIT_MS:g})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="mixed-load requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="STREAM_HEARTBEAT_SECONDS")
    parser.add_argument("--web-concurrency", type=int, default=2, help="gunicorn workers of the web process")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery processes of the worker")
    parser.add_argument("--ports", default="8600-8699", help="where the emulator and the web process listen")
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database.startswith("postgres") or not redis_url:
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the load runs as deployed")

    low, high = (int(x) for x in args.ports.split("-"))
    vt_port = free_port(low, high)
    web_port = free_port(vt_port + 1, high)
    load_db = recreate_database(database)
    env = service_env(load_db, redis_url, vt_port, web_port)
    env |= {
        "WEB_CONCURRENCY": str(args.web_concurrency),
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
        "STREAM_HEARTBEAT_SECONDS": str(args.heartbeat),
        "STREAM_MAX_PER_PROCESS": str(max(500, args.streams)),
        "STREAM_MAX_TOTAL": str(max(2000, args.streams)),
    }
    log_path = Path(env["INSTANCE_DIR"]) / "load.log"
    services = Services(env, log_path)
    vt_key = secrets.token_hex(32)
    api = f"http://127.0.0.1:{web_port}/api"
    figures: dict[str, object] = {
        "web: gunicorn worker class": "gevent",
        "web: workers": args.web_concurrency,
        "worker: Celery processes": args.worker_concurrency,
        "mixed load, requests/s offered": f"{args.rate:g}",
        "mixed load, seconds": f"{args.duration:g}",
        "load average before (1 min)": f"{os.getloadavg()[0]:.2f}",
    }
    print(f"logs: {log_path}")
    try:
        services.emulator(vt_port, vt_key, "--queued-seconds", "4", "--progress-seconds", "8")
        services.migrate()
        services.procfile("web")
        wait_until(lambda: requests.get(f"{api}/health", timeout=5).status_code == 200, "the web process")

        started = time.monotonic()
        pool = gevent.pool.Pool(20)
        analysts = pool.map(lambda n: sign_up(api, n, vt_key), range(args.users))
        for ioc in CACHED_IOCS:  # the first answer fills the cache; the load reads it
            r = analysts[0].session.post(f"{api}/check_ioc", json={"ioc": ioc}, headers=analysts[0].headers)
            assert r.status_code in (200, 202), r.text
        figures["setup: users, keys, uploads (s)"] = f"{time.monotonic() - started:.1f}"

        results = [StreamResult() for _ in range(args.streams)]
        read_timeout = args.heartbeat * 4 + 30
        streams = gevent.pool.Group()
        opened_at = time.monotonic()
        for n, result in enumerate(results):
            analyst = analysts[n % len(analysts)]
            url = f"{api}/stream/scans/{analyst.scan_id}"
            streams.spawn(follow, url, analyst, opened_at, result, read_timeout)
        wait_until(lambda: all(r.first_event_ms is not None or r.error for r in results), "every stream's first event")
        figures["streams open, first events in (s)"] = f"{time.monotonic() - opened_at:.1f}"
        gevent.sleep(args.heartbeat * 1.5)  # every stream beats at least once before anything changes

        services.procfile("worker")
        load = MixedLoad(api, analysts)
        load.run(args.rate, args.duration)
        figures["load average after (1 min)"] = f"{os.getloadavg()[0]:.2f}"
        streams.join(timeout=read_timeout + 120)
        drain_started = time.monotonic()
        wait_until(lambda: queue_drained(env, load_db), "the worker's queue to drain", limit=240)
        figures["queue drained after the load (s)"] = f"{time.monotonic() - drain_started:.1f}"
        return 0 if report(args, load, results, figures) else 1
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
