"""Per-key VirusTotal budgets shared by every process and machine.

VirusTotal counts requests per key value (public keys: 4 a minute, 500 a UTC day), so the budget
is named by the key's fingerprint: every stored copy of a key, and every worker using one, draws
from the same tokens. A token is taken right before each HTTP request:

- a sliding window holds at most `per_minute` grants over `VT_QUOTA_MINUTE_SECONDS`, each grant
  kept `VT_QUOTA_MARGIN_SECONDS` longer, because our clock starts before VirusTotal's does;
- a counter per UTC day stops at `per_day`;
- after VirusTotal answered 429 the budget is blocked until its window resets.

Two stores share the rules: Redis (one atomic Lua script per operation, on Redis's clock) when
`REDIS_URL` is set, else the SQL database (callers take turns on a row lock, in a connection of
their own so the caller's transaction is never committed). Nothing here sleeps: a caller is told
how long to wait and a Celery task retries with that countdown.
"""

from __future__ import annotations

import math
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import redis
from flask import Flask, current_app
from sqlalchemy import Connection, Engine, delete, extract, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import QuotaExhausted
from ..redis_backoff import client as redis_client
from .models import QuotaBudget, QuotaGrant

__all__ = [
    "Budget",
    "QuotaStore",
    "QuotaStoreUnavailable",
    "RedisQuotaStore",
    "Scope",
    "SqlQuotaStore",
    "acquire",
    "ensure_no_pending_sqlite_writes",
    "give_back",
    "mark_exhausted",
    "store",
    "take",
    "try_acquire",
    "usage",
    "wait_time",
]

DAY = 86400
Scope = Literal["minute", "day"]
STORE_RETRY_SECONDS = 10.0


class QuotaStoreUnavailable(QuotaExhausted):
    """The budgets live in Redis and Redis cannot be reached: no request may be sent, since it
    could not be counted. Work waits as it would for quota; a request is answered 503."""

    status, code = 503, "QUOTA_STORE_UNAVAILABLE"
    message = "The VirusTotal quota store is unreachable; retrying"

    def __init__(self, message: str | None = None, *, retry_after: float = STORE_RETRY_SECONDS, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {})["Retry-After"] = str(math.ceil(retry_after))
        super().__init__(message, retry_after=retry_after, **kwargs)


class KeyLike(Protocol):
    fingerprint: str
    per_minute: int
    per_day: int


@dataclass(frozen=True)
class Budget:
    """What a store needs to know about a key: the budget's name and its limits."""

    id: str
    per_minute: int
    per_day: int

    @classmethod
    def of(cls, key: KeyLike | Budget) -> Budget:
        if isinstance(key, Budget):
            return key
        return cls(key.fingerprint, key.per_minute, key.per_day)


@dataclass(frozen=True)
class _State:
    """A budget as read at `now` (Unix seconds of the store's clock)."""

    now: float
    grants: list[float]  # grants still inside the window, oldest first
    day_used: int
    blocked_until: float


def _wait(state: _State, budget: Budget, span: float) -> float:
    """Seconds until the budget can grant a token; 0.0 if it can now."""
    if state.blocked_until > state.now:
        return state.blocked_until - state.now
    if state.day_used >= budget.per_day:
        return _next_day(state.now) - state.now
    excess = len(state.grants) - budget.per_minute
    if excess >= 0:
        # The grant whose expiry brings the count below the limit (more than one when the limit
        # was lowered after the grants were taken).
        return max(state.grants[excess] + span - state.now, 1e-3)
    return 0.0


def _next_day(now: float) -> float:
    return (math.floor(now / DAY) + 1) * DAY


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _usage(state: _State, budget: Budget, span: float) -> dict[str, Any]:
    used = len(state.grants)
    return {
        "minute_used": used,
        "minute_remaining": max(budget.per_minute - used, 0),
        # When the oldest counted request leaves the window and a token frees.
        "minute_resets_at": _at(state.grants[0] + span) if state.grants else None,
        "day_used": state.day_used,
        "day_remaining": max(budget.per_day - state.day_used, 0),
        "day_resets_at": _at(_next_day(state.now)),
        "exhausted_until": _at(state.blocked_until) if state.blocked_until > state.now else None,
    }


class QuotaStore(ABC):
    """`window` is VirusTotal's minute, `margin` what each grant is held beyond it."""

    def __init__(self, window: float, margin: float) -> None:
        self.window = window
        self.margin = margin
        self.span = window + margin

    @abstractmethod
    def take(self, budget: Budget) -> tuple[float, str | None]:
        """(0.0, the grant's name) when a token was taken; otherwise (seconds until one frees, None)."""

    def try_acquire(self, budget: Budget) -> float:
        """0.0 when a token was taken; otherwise the seconds until one frees, nothing taken."""
        return self.take(budget)[0]

    @abstractmethod
    def give_back(self, budget: Budget, grant: str) -> None:
        """Undo a grant whose request never reached VirusTotal: out of the window and the day's count."""

    @abstractmethod
    def wait_time(self, budget: Budget) -> float:
        """What `try_acquire` would answer now, without taking anything."""

    @abstractmethod
    def usage(self, budget: Budget) -> dict[str, Any]:
        """Used and remaining this window and this UTC day, when each resets, and any block."""

    @abstractmethod
    def block(self, budget: Budget, scope: Scope) -> datetime:
        """Refuse every token until the window of `scope` resets; returns that moment."""

    def _block_until(self, now: float, scope: Scope) -> float:
        return now + self.span if scope == "minute" else _next_day(now)


class SqlQuotaStore(QuotaStore):
    """Budgets in two tables of the application database (embedded mode, or no Redis).

    Takers of one budget are serialised by a lock on its row (SELECT ... FOR UPDATE on
    PostgreSQL, BEGIN IMMEDIATE on SQLite) held for a few statements. PostgreSQL's clock is the
    time source, so machines whose clocks disagree still share one window.
    """

    def __init__(self, engine: Engine, window: float, margin: float) -> None:
        super().__init__(window, margin)
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    def take(self, budget: Budget) -> tuple[float, str | None]:
        with self._locked(budget.id) as conn:
            state = self._read(conn, budget.id, prune=True)
            wait = _wait(state, budget, self.span)
            if wait > 0.0:
                return wait, None
            today = math.floor(state.now / DAY)
            grant = conn.scalar(
                insert(QuotaGrant).values(budget_id=budget.id, granted_at=state.now).returning(QuotaGrant.id)
            )
            conn.execute(
                update(QuotaBudget)
                .where(QuotaBudget.budget_id == budget.id)
                .values(day=today, day_used=state.day_used + 1)
            )
            return 0.0, str(grant)

    def give_back(self, budget: Budget, grant: str) -> None:
        with self._locked(budget.id) as conn:
            today = math.floor(self._now(conn) / DAY)
            if conn.execute(delete(QuotaGrant).where(QuotaGrant.id == int(grant))).rowcount:
                conn.execute(
                    update(QuotaBudget)
                    .where(QuotaBudget.budget_id == budget.id, QuotaBudget.day == today, QuotaBudget.day_used > 0)
                    .values(day_used=QuotaBudget.day_used - 1)
                )

    def wait_time(self, budget: Budget) -> float:
        with self.engine.connect() as conn:
            return _wait(self._read(conn, budget.id), budget, self.span)

    def usage(self, budget: Budget) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return _usage(self._read(conn, budget.id), budget, self.span)

    def block(self, budget: Budget, scope: Scope) -> datetime:
        with self._locked(budget.id) as conn:
            now = self._now(conn)
            until = self._block_until(now, scope)
            current = conn.scalar(select(QuotaBudget.blocked_until).where(QuotaBudget.budget_id == budget.id))
            until = max(until, current or 0.0)
            conn.execute(update(QuotaBudget).where(QuotaBudget.budget_id == budget.id).values(blocked_until=until))
            return _at(until)

    def _read(self, conn: Connection, budget_id: str, prune: bool = False) -> _State:
        now = self._now(conn)
        floor = now - self.span
        if prune:
            conn.execute(delete(QuotaGrant).where(QuotaGrant.budget_id == budget_id, QuotaGrant.granted_at <= floor))
        row = conn.execute(
            select(QuotaBudget.day, QuotaBudget.day_used, QuotaBudget.blocked_until).where(
                QuotaBudget.budget_id == budget_id
            )
        ).first()
        grants = conn.scalars(
            select(QuotaGrant.granted_at)
            .where(QuotaGrant.budget_id == budget_id, QuotaGrant.granted_at > floor)
            .order_by(QuotaGrant.granted_at)
        ).all()
        if row is None:
            return _State(now, list(grants), 0, 0.0)
        day_used = row.day_used if row.day == math.floor(now / DAY) else 0
        return _State(now, list(grants), day_used, row.blocked_until or 0.0)

    def _now(self, conn: Connection) -> float:
        if self._sqlite:
            return time.time()
        # clock_timestamp(), not now(): now() is when the transaction began, before the lock wait.
        return float(conn.scalar(select(extract("epoch", func.clock_timestamp()))))

    @contextmanager
    def _locked(self, budget_id: str) -> Iterator[Connection]:
        row = {"budget_id": budget_id, "day": 0, "day_used": 0, "blocked_until": 0.0}
        if self._sqlite:
            with self.engine.connect() as conn:
                # pysqlite would open a deferred transaction on its own; in autocommit mode the
                # driver leaves BEGIN to us, and IMMEDIATE takes the write lock before reading.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    conn.execute(sqlite.insert(QuotaBudget).values(**row).on_conflict_do_nothing())
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with self.engine.begin() as conn:
                conn.execute(postgresql.insert(QuotaBudget).values(**row).on_conflict_do_nothing())
                conn.execute(select(QuotaBudget.budget_id).where(QuotaBudget.budget_id == budget_id).with_for_update())
                yield conn


# Each script reads Redis's own clock, so every machine measures the window the same way.
# KEYS: grants (sorted set, score = grant time), day (hash: day, used), block (string: until).
_LUA_CLOCK = """
-- Lua's tostring keeps 14 digits, a tenth of a millisecond of a Unix time: print microseconds.
local function fmt(x) return string.format('%.6f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_LUA_STATE = (
    _LUA_CLOCK
    + """
local span = tonumber(ARGV[1])
local day = math.floor(now / 86400)
local d = redis.call('HMGET', KEYS[2], 'day', 'used')
local day_used = 0
if tonumber(d[1]) == day then day_used = tonumber(d[2]) end
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
"""
)

_LUA_TRY_ACQUIRE = (
    _LUA_STATE
    + """
local per_minute, per_day, take = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
if take then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span) end
local grants = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now - span), '+inf', 'WITHSCORES')
local n = #grants / 2
local wait = 0
if blocked > now then
  wait = blocked - now
elseif day_used >= per_day then
  wait = (day + 1) * 86400 - now
elseif n >= per_minute then
  wait = math.max(tonumber(grants[2 * (n - per_minute) + 2]) + span - now, 0.001)
elseif take then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(span * 1000) + 1000)
  redis.call('HSET', KEYS[2], 'day', day, 'used', day_used + 1)
  redis.call('EXPIRE', KEYS[2], 2 * 86400)
end
return fmt(wait)
"""
)

_LUA_GIVE_BACK = (
    _LUA_CLOCK
    + """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local d = redis.call('HMGET', KEYS[2], 'day', 'used')
if removed == 1 and tonumber(d[1]) == math.floor(now / 86400) and tonumber(d[2]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'used', -1)
end
return removed
"""
)

_LUA_USAGE = (
    _LUA_STATE
    + """
local grants = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now - span), '+inf', 'WITHSCORES')
local out = {fmt(now), tostring(day_used), fmt(blocked)}
for i = 2, #grants, 2 do out[#out + 1] = grants[i] end
return out
"""
)

_LUA_BLOCK = (
    _LUA_CLOCK
    + """
local until_ = now + tonumber(ARGV[1])
if ARGV[2] == 'day' then until_ = (math.floor(now / 86400) + 1) * 86400 end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > until_ then until_ = current end
redis.call('SET', KEYS[1], fmt(until_), 'PXAT', math.ceil(until_ * 1000))
return fmt(until_)
"""
)


class RedisQuotaStore(QuotaStore):
    def __init__(self, client: redis.Redis, window: float, margin: float, prefix: str = "scanner:vtq:") -> None:
        super().__init__(window, margin)
        self.client = client
        self.prefix = prefix
        self._try_acquire = client.register_script(_LUA_TRY_ACQUIRE)
        self._usage = client.register_script(_LUA_USAGE)
        self._block = client.register_script(_LUA_BLOCK)
        self._give_back = client.register_script(_LUA_GIVE_BACK)

    def _keys(self, budget_id: str) -> list[str]:
        # The hash tag keeps one budget's keys in one cluster slot, as a script needs.
        base = f"{self.prefix}{{{budget_id}}}"
        return [f"{base}:grants", f"{base}:day", f"{base}:block"]

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise QuotaStoreUnavailable() from exc

    def _run(self, budget: Budget, take: bool, grant: str = "") -> float:
        args = [self.span, budget.per_minute, budget.per_day, "1" if take else "0", grant]
        with self._reachable():
            return float(self._try_acquire(keys=self._keys(budget.id), args=args))

    def take(self, budget: Budget) -> tuple[float, str | None]:
        grant = uuid.uuid4().hex
        wait = self._run(budget, take=True, grant=grant)
        return (wait, None) if wait > 0.0 else (0.0, grant)

    def give_back(self, budget: Budget, grant: str) -> None:
        with self._reachable():
            self._give_back(keys=self._keys(budget.id)[:2], args=[grant])

    def wait_time(self, budget: Budget) -> float:
        return self._run(budget, take=False)

    def usage(self, budget: Budget) -> dict[str, Any]:
        with self._reachable():
            now, day_used, blocked, *grants = self._usage(keys=self._keys(budget.id), args=[self.span])
        state = _State(float(now), [float(g) for g in grants], int(day_used), float(blocked))
        return _usage(state, budget, self.span)

    def block(self, budget: Budget, scope: Scope) -> datetime:
        with self._reachable():
            until = self._block(keys=[self._keys(budget.id)[2]], args=[self.span, scope])
        return _at(float(until))


def store(app: Flask | None = None) -> QuotaStore:
    """The application's store: Redis when REDIS_URL is set, else its SQL database."""
    app = app or current_app._get_current_object()
    window, margin = app.config["VT_QUOTA_MINUTE_SECONDS"], app.config["VT_QUOTA_MARGIN_SECONDS"]
    settings = (app.config.get("REDIS_URL"), window, margin)
    cached = app.extensions.get("vt_quota")
    if cached is not None and cached[0] == settings:
        return cached[1]
    if app.config.get("REDIS_URL"):
        # A frozen Redis must not hold a request or a task for as long as it stays frozen: after a
        # few seconds the store counts as unreachable (503 for a request, a wait for the work).
        client = redis_client(app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=3)
        created: QuotaStore = RedisQuotaStore(client, window, margin)
    else:
        from ..extensions import db

        created = SqlQuotaStore(db.engine, window, margin)
    app.extensions["vt_quota"] = (settings, created)
    return created


def ensure_no_pending_sqlite_writes() -> None:
    """Refuse to deadlock: SQLite has one write lock per database and a session that wrote
    without committing holds it, so a transaction of our own (the SQL store's row lock, a key's
    state) would wait for it until the busy timeout. Callers commit before calling VirusTotal."""
    from ..extensions import db

    session = db.session()
    if not session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        return
    if session.connection().connection.dbapi_connection.in_transaction:
        raise RuntimeError("commit before calling VirusTotal: on SQLite pending writes block the quota store")


def _writable_store() -> QuotaStore:
    current = store()
    if isinstance(current, SqlQuotaStore):
        ensure_no_pending_sqlite_writes()
    return current


def try_acquire(key: KeyLike | Budget) -> float:
    """Take one token from the key's budget: 0.0 if taken, else seconds until one frees."""
    return _writable_store().try_acquire(Budget.of(key))


def take(key: KeyLike | Budget) -> tuple[float, str | None]:
    """Like try_acquire, and the grant's name for `give_back` when a token was taken."""
    return _writable_store().take(Budget.of(key))


def give_back(key: KeyLike | Budget, grant: str) -> None:
    """Return a token whose request never reached VirusTotal (no connection was made)."""
    _writable_store().give_back(Budget.of(key), grant)


def acquire(key: KeyLike | Budget) -> None:
    """Take one token or raise QuotaExhausted(retry_after=seconds until one frees)."""
    wait = try_acquire(key)
    if wait > 0:
        raise QuotaExhausted("This API key's VirusTotal quota is used up for now", retry_after=wait)


def wait_time(key: KeyLike | Budget) -> float:
    """Seconds until the key's budget could grant a token (0.0: now), taking nothing."""
    return store().wait_time(Budget.of(key))


def usage(key: KeyLike | Budget) -> dict[str, Any]:
    return store().usage(Budget.of(key))


def mark_exhausted(key: KeyLike | Budget, scope: Scope) -> datetime:
    """After VirusTotal's 429: no token until the minute window passes, or until 00:00 UTC."""
    return _writable_store().block(Budget.of(key), scope)
