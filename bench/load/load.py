"""`make load`: the service under streams and a mixed load, bounded, with one table of figures.

Starts what the Procfile runs in production (the `web` process, then the `worker` process, each
through honcho) on PostgreSQL and Redis, with the VirusTotal emulator, in a database of its own
next to DATABASE_URL's. Then:

1. signs up USERS analysts (each adds a VirusTotal key and uploads a file, whose scan waits: no
   worker runs yet) and warms the indicator cache;
2. streams: opens STREAMS scan streams at once, spread over the users (`/api/stream/scans/{id}`),
   starts the worker, so every followed scan moves on and finishes, and meanwhile runs the mixed
   load at a fixed arrival rate (RATE requests/s for DURATION s): scan status reads, history
   pages, cached indicator lookups, uploads, health probes;
3. sustained: the mixed load alone at SUSTAINED_RATE requests/s for SUSTAINED s (several rates
   in turn when given a list);
4. waits for the worker's queue to drain, prints the table and stops everything.

Pass: no error (any status >= 400 or a failed request, streams included), p99 of the non-stream
requests under 250 ms in each phase, and every stream got its first event, a heartbeat, a status
change from the worker and `complete`. Exit status 1 otherwise.

The CPU each part used during each phase is printed too (the web process, the worker, the
emulator, this load generator, the whole machine), with the web process's CPU per request: the
load generator runs on the same cores as the service, so its own share is shown apart.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/load/load.py [--streams 500 --users 200 --rate 40 --duration 60 \\
        --sustained 600 --sustained-rate 100]

`--streams 0` or `--sustained 0` leaves a phase out. Redis: REDIS_URL's database for the cache
and the broker (or LOAD_BROKER_URL for the broker); both are emptied first.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from client import Http  # noqa: E402
from processes import Processes, free_port, wait_until  # noqa: E402

PASSWORD = "Load-Test-Password-42"
CACHED_IOCS = ("8.8.8.8", "1.1.1.1", "example.com", "44d88612fea8a8f36de82e1278abb02f")
P99_LIMIT_MS = 250.0
MIX = (("status", 45), ("history", 20), ("cached lookup", 25), ("upload", 5), ("health", 5))
API = "/api"


@dataclass
class Analyst:
    username: str
    token: str
    scan_id: str = ""

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
    """LOAD_BROKER_URL, or REDIS_URL's own database: Celery's keys never meet the cache's prefixed ones."""
    return os.environ.get("LOAD_BROKER_URL") or redis_url


def service_env(database_url: str, redis_url: str, vt_port: int, web_port: int, bin_dir: Path) -> dict[str, str]:
    """The environment of every process the run starts, as a deployment would set it."""
    env = {
        **os.environ,
        # The Procfile names gunicorn and celery bare, as a platform's PATH has them.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url(redis_url),
        "INSTANCE_DIR": tempfile.mkdtemp(prefix="scanner-load-"),
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "VT_API_URL": f"http://127.0.0.1:{vt_port}/api/v3",
        "PORT": str(web_port),
        # Sign-ups are setup, not the load: argon2id at a low cost, and one address may sign in
        # many accounts at once.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_PARALLELISM": "1",
        "AUTH_RATE_LIMIT": "100000 per minute",
        "LOGIN_MAX_FAILURES_PER_IP": "100000",
        # Every request still counts against its client's budget (the limiter's work is part of
        # the load); the budgets are wide enough that 200 users at 100 requests/s stay within them.
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_PER_HOUR": "1000000",
        "UPLOAD_RATE_LIMIT": "100000 per minute",
        "LOG_LEVEL": "WARNING",
    }
    for url in {redis_url, env["CELERY_BROKER_URL"]}:
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    return env


def services_for(env: dict[str, str], log_name: str, root: Path = ROOT) -> Processes:
    return Processes(env, open(Path(env["INSTANCE_DIR"]) / log_name, "w"), root)  # noqa: SIM115  closed by the run


def start_web(services: Processes, http: Http, vt_port: int, vt_key: str, *emulator_options: str) -> None:
    services.emulator("--port", str(vt_port), "--quiet", "--key", f"{vt_key}:1000000:100000000", *emulator_options)
    services.migrate()
    services.procfile("web")
    wait_until(lambda: http.get(f"{API}/health").status == 200, "the web process", 90)


def sign_up(http: Http, n: int, vt_key: str) -> Analyst:
    username = f"load{n:04d}"
    creds = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    r = http.post_json(f"{API}/auth/register", creds)
    assert r.status == 201, r.text
    r = http.post_json(f"{API}/auth/login", {"username": username, "password": PASSWORD})
    assert r.status == 200, r.text
    analyst = Analyst(username, r.json()["access_token"])
    key = {"name": "load", "key_value": vt_key, "per_minute": 100000, "per_day": 10000000}
    r = http.post_json(f"{API}/keys/", key, analyst.headers)
    assert r.status == 201, r.text
    r = http.post_file(f"{API}/files/upload", "sample.bin", os.urandom(2048), analyst.headers)
    assert r.status == 201, r.text
    analyst.scan_id = r.json()["scan"]["scan_id"]
    return analyst


def sign_up_all(http: Http, users: int, vt_key: str) -> list[Analyst]:
    # A few at a time: adding a key asks VirusTotal (the emulator) while the request holds a
    # database connection, and setup is not what the run measures.
    analysts = gevent.pool.Pool(6).map(lambda n: sign_up(http, n, vt_key), range(users))
    for ioc in CACHED_IOCS:  # the first answer fills the cache; the load reads it
        r = http.post_json(f"{API}/check_ioc", {"ioc": ioc}, analysts[0].headers)
        assert r.status in (200, 202), r.text
    return analysts


def follow(
    http: Http, path: str, analyst: Analyst, opened_at: float, result: StreamResult, read_timeout: float
) -> None:
    """Read one stream to its end; every event and heartbeat is counted."""
    try:
        result.status_code, lines = http.lines(path, analyst.headers, read_timeout)
        if result.status_code != 200:
            result.error = next(lines, "")[:200]
            return
        event = None
        for line in lines:
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
        result.error = result.error or "closed before complete"
    except OSError as error:
        result.error = f"{type(error).__name__}: {error}"[:200]


class MixedLoad:
    """Requests at a fixed arrival rate, whatever the latency (an open model: slow answers do
    not slow the offered load down)."""

    def __init__(self, http: Http, analysts: list[Analyst]) -> None:
        self.http = http
        self.analysts = analysts
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        kinds, weights = zip(*MIX, strict=True)
        self.kinds, self.weights = kinds, weights

    def _send(self, kind: str, analyst: Analyst):
        http, headers = self.http, analyst.headers
        if kind == "status":
            return http.get(f"{API}/scan/{analyst.scan_id}/status", headers)
        if kind == "history":
            return http.get(f"{API}/scan/results?page={random.randint(1, 3)}&per_page=20", headers)
        if kind == "cached lookup":
            return http.post_json(f"{API}/check_ioc", {"ioc": random.choice(CACHED_IOCS)}, headers)
        if kind == "upload":
            return http.post_file(f"{API}/files/upload", "sample.bin", os.urandom(random.randint(1024, 65536)), headers)
        return http.get(f"{API}/health")

    def one(self, kind: str) -> None:
        started = time.monotonic()
        try:
            r = self._send(kind, random.choice(self.analysts))
            ok, detail = r.status < 400, f"{r.status} {r.text[:160]}"
        except (OSError, ValueError) as error:
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

    @property
    def count(self) -> int:
        return sum(len(values) for values in self.latencies.values())


class CpuMeter:
    """CPU seconds each part of the run used between `start()` and `stop()`."""

    def __init__(self, services: Processes, database: str) -> None:
        self.services = services
        self.database = database
        self.used: dict[str, float] = {}

    def _postgres(self) -> float:
        """The run's PostgreSQL backends (their titles name the database); one closed meanwhile
        takes its CPU with it, so this is a floor."""
        total = 0.0
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            title = " ".join(proc.info["cmdline"] or ())
            if proc.info["name"] == "postgres" and f" {self.database} " in f"{title} " and proc.info["cpu_times"]:
                total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
        return total

    def _now(self) -> dict[str, float]:
        figures = {}
        for name, proc in self.services.procs.items():
            try:
                tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            total = 0.0
            for each in tree:
                try:
                    times = each.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            figures[name] = total
        figures["PostgreSQL (this database)"] = self._postgres()
        me = resource.getrusage(resource.RUSAGE_SELF)
        figures["load generator"] = me.ru_utime + me.ru_stime
        machine = psutil.cpu_times()
        figures["machine (all processes)"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return figures

    def start(self) -> None:
        self._started, self._at = self._now(), time.monotonic()

    def stop(self) -> None:
        ended = self._now()
        self.seconds = time.monotonic() - self._at
        self.used = {name: ended[name] - self._started.get(name, 0.0) for name in ended}


@dataclass
class Phase:
    name: str
    load: MixedLoad
    cpu: CpuMeter
    load_before: float
    load_after: float = 0.0


def open_streams(http: Http, analysts: list[Analyst], count: int, read_timeout: float):
    results = [StreamResult() for _ in range(count)]
    group = gevent.pool.Group()
    opened_at = time.monotonic()
    for n, result in enumerate(results):
        analyst = analysts[n % len(analysts)]
        group.spawn(follow, http, f"{API}/stream/scans/{analyst.scan_id}", analyst, opened_at, result, read_timeout)
    wait_until(lambda: all(r.first_event_ms is not None or r.error for r in results), "every stream's first event")
    return results, group, time.monotonic() - opened_at


def run_phase(
    name: str, http: Http, analysts: list[Analyst], services: Processes, rate: float, duration: float
) -> Phase:
    database = urlparse(services.env["DATABASE_URL"]).path.strip("/")
    phase = Phase(name, MixedLoad(http, analysts), CpuMeter(services, database), os.getloadavg()[0])
    phase.cpu.start()
    phase.load.run(rate, duration)
    phase.cpu.stop()
    phase.load_after = os.getloadavg()[0]
    return phase


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


def _latency_rows(phase: Phase, p99_limit: float) -> tuple[bool, float]:
    load = phase.load
    everything: list[float] = []
    rows = []
    for kind, _ in MIX:
        values = load.latencies.get(kind, [])
        everything += values
        rows.append((kind, values, load.errors[kind]))
    rows.append(("all non-stream", everything, sum(load.errors.values())))
    print(f"\n{phase.name}: requests{'count':>12}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values, errors in rows:
        print(
            f"  {kind:<26}{len(values):>8}{errors:>8}{percentile(values, 50):>9.1f}{percentile(values, 95):>9.1f}"
            f"{percentile(values, 99):>9.1f}{max(values, default=float('nan')):>9.1f}"
        )
    p99 = percentile(everything, 99)
    for sample in load.error_samples:
        print(f"  error e.g. {sample}")
    return sum(load.errors.values()) == 0 and (not everything or not p99_limit or p99 < p99_limit), p99


def _cpu_rows(phase: Phase) -> None:
    cpu, done = phase.cpu, phase.load.count
    print(f"  {'achieved requests/s':<40}{done / cpu.seconds:>10.1f}")
    print(f"  {'load average (1 min) before / after':<40}{phase.load_before:>5.2f} /{phase.load_after:>5.2f}")
    for name, used in cpu.used.items():
        print(f"  {'CPU s, ' + name:<40}{used:>10.1f}   ({100 * used / cpu.seconds:.0f}% of a core)")
    if done and "web" in cpu.used:
        print(f"  {'web CPU per request (ms)':<40}{1000 * cpu.used['web'] / done:>10.2f}")
        print(f"  {'load generator CPU per request (ms)':<40}{1000 * cpu.used['load generator'] / done:>10.2f}")
        outside = ("load generator", "machine (all processes)")
        service = sum(used for name, used in cpu.used.items() if name not in outside)
        print(f"  {'service CPU per request (ms), all parts':<40}{1000 * service / done:>10.2f}")


def _stream_rows(streams: list[StreamResult]) -> bool:
    good = [s for s in streams if s.status_code == 200 and s.statuses >= 1 and s.heartbeats >= 1 and s.complete]
    first = [s.first_event_ms for s in streams if s.first_event_ms is not None]
    beats = [s.heartbeats for s in streams]
    print(f"  {'streams opened at once':<40}{len(streams):>10}")
    print(f"  {'answered 200':<40}{sum(s.status_code == 200 for s in streams):>10}")
    print(f"  {'first event p50 / p99 ms':<40}{percentile(first, 50):>5.0f} /{percentile(first, 99):>5.0f}")
    print(f"  {'with a status change from the worker':<40}{sum(s.statuses >= 2 for s in streams):>10}")
    print(f"  {'with heartbeats':<40}{sum(s.heartbeats >= 1 for s in streams):>10}")
    print(f"  {'heartbeats per stream, min / max':<40}{min(beats):>5} /{max(beats):>5}")
    print(f"  {'ended with complete':<40}{sum(s.complete for s in streams):>10}")
    print(f"  {'failed (error, refused, cut, missed)':<40}{len(streams) - len(good):>10}")
    for sample in [s.error or f"status {s.status_code}" for s in streams if s not in good][:5]:
        print(f"    e.g. {sample}")
    return len(good) == len(streams)


def report(phases: list[Phase], streams: list[StreamResult], figures: dict, p99_limit: float) -> bool:
    ok = True
    print(f"\n{'run':<42}{'value':>10}", flush=True)
    for name, value in figures.items():
        print(f"  {name:<40}{value:>10}")
    for phase in phases:
        passed, p99 = _latency_rows(phase, p99_limit)
        if phase.name == "streams" and streams:
            passed = _stream_rows(streams) and passed
        _cpu_rows(phase)
        limit = f"limit {p99_limit:g}" if p99_limit else "reported, not a limit"
        print(f"  {'PASS' if passed else 'FAIL'}: {phase.name}, non-stream p99 {p99:.1f} ms ({limit})")
        ok = ok and passed
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0, help="mixed-load requests per second beside the streams")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load beside the streams")
    parser.add_argument("--sustained", type=float, default=600.0, help="seconds of the mixed load alone (0: none)")
    parser.add_argument(
        "--sustained-rate",
        default="100",
        help="its requests per second; several (30,50,70) run one after another, to find where p99 crosses the limit",
    )
    parser.add_argument(
        "--p99-limit-ms",
        type=float,
        default=P99_LIMIT_MS,
        help="fail when a phase's non-stream p99 is over it; 0 reports p99 without failing on it (shared CI cores)",
    )
    parser.add_argument("--heartbeat", type=float, default=15.0, help="STREAM_HEARTBEAT_SECONDS (as deployed)")
    parser.add_argument("--web-concurrency", type=int, default=2, help="gunicorn workers of the web process")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery processes of the worker")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # Stopped from outside (`timeout`, CI): stop what it started on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database.startswith("postgres") or not redis_url:
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the load runs as deployed")
    vt_port, web_port = free_port(), free_port()
    load_db = recreate_database(database)
    services = services_for(service_env(load_db, redis_url, vt_port, web_port, ROOT / ".venv" / "bin"), "load.log")
    env = services.env
    env |= {
        "WEB_CONCURRENCY": str(args.web_concurrency),
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
        "STREAM_HEARTBEAT_SECONDS": str(args.heartbeat),
        "STREAM_MAX_PER_PROCESS": str(max(500, args.streams)),
        "STREAM_MAX_TOTAL": str(max(2000, args.streams)),
    }
    http = Http("127.0.0.1", web_port)
    vt_key = secrets.token_hex(32)
    figures: dict[str, object] = {
        "web: gunicorn worker class": env.get("GUNICORN_WORKER_CLASS", "gevent"),
        "web: workers": args.web_concurrency,
        "worker: Celery processes": args.worker_concurrency,
        "stream heartbeat (s)": f"{args.heartbeat:g}",
        "machine cores": os.cpu_count(),
    }
    print(f"logs: {services.log.name}")
    phases: list[Phase] = []
    results: list[StreamResult] = []
    try:
        start_web(services, http, vt_port, vt_key, "--queued-seconds", "4", "--progress-seconds", "8")
        started = time.monotonic()
        analysts = sign_up_all(http, args.users, vt_key)
        figures["setup: users, keys, uploads (s)"] = f"{time.monotonic() - started:.1f}"
        progress(f"{args.users} users signed up")
        if args.streams:
            read_timeout = args.heartbeat * 4 + 30
            results, streams, took = open_streams(http, analysts, args.streams, read_timeout)
            figures["streams open, first events in (s)"] = f"{took:.1f}"
            progress(f"{args.streams} streams open")
            gevent.sleep(args.heartbeat * 1.5)  # every stream beats at least once before anything changes
            services.procfile("worker")
            phases.append(run_phase("streams", http, analysts, services, args.rate, args.duration))
            progress("mixed load beside the streams done")
            streams.join(timeout=read_timeout + 120)
            progress("streams ended")
        if "worker" not in services.procs:
            services.procfile("worker")
        for rate in (float(x) for x in args.sustained_rate.split(",") if args.sustained):
            phases.append(run_phase(f"sustained {rate:g}/s", http, analysts, services, rate, args.sustained))
            progress(f"sustained {rate:g}/s done")
        drain_started = time.monotonic()
        wait_until(lambda: queue_drained(env, load_db), "the worker's queue to drain", limit=240)
        figures["queue drained after the load (s)"] = f"{time.monotonic() - drain_started:.1f}"
        figures["connections the load generator opened"] = http.opened
        return 0 if report(phases, results, figures, args.p99_limit_ms) else 1
    except SystemExit:  # stopped, or gave up waiting: what was measured so far, then FAIL
        if phases:
            report(phases, results, figures, args.p99_limit_ms)
        print("FAIL: the run did not finish")
        raise
    finally:
        services.stop(grace=20)
        services.log.close()


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what} (load average {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
