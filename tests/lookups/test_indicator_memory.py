"""A web process answers an indicator asked again and again from memory while it hears the events
(scanner/lookups/answers.py): what a user notices is that a new answer still shows at once. One
announced by any process shows within moments, one fetched by this process shows on its very next
check even if its event is lost, and without events every check reads the cache afresh.

The events travel through a Redis server of the test's own (as in tests/scans/test_read_memory.py);
each test asks about an indicator of its own, so no test meets what another left in memory."""

from __future__ import annotations

import time

import pytest
import requests

from scanner import events
from scanner.db_types import utcnow
from scanner.extensions import cache
from scanner.lookups import answers
from tests.fixtures.redis_server import LONG_MEMORY, wait_until_hearing

from .helpers import check, domain_report


def _cache(domain: str, malicious: int) -> str:
    """Put a report in the lookup cache, as another process would; returns its key."""
    key = f"vt_domain_{domain}"
    cache.set(key, {"report": domain_report(domain, malicious=malicious), "fetched_at": utcnow()}, timeout=300)
    return key


def _verdict(client, user, domain: str, **fields) -> str:
    r = check(client, user, domain, **fields)
    assert r.status_code == 200, r.json
    return r.json["summary"]["verdict"]


def _until(read, expected: str, seconds: float = 5.0) -> None:
    began = time.monotonic()
    while (found := read()) != expected:
        assert time.monotonic() - began < seconds, f"still {found!r} after {seconds} s"
        time.sleep(0.02)


def test_a_remembered_answer_holds_until_its_event(client, app_ctx, user, heard):
    domain = "remembered.example.org"
    key = _cache(domain, malicious=0)
    assert _verdict(client, user, domain) == "clean"
    _cache(domain, malicious=5)  # behind this process's back: no event
    assert _verdict(client, user, domain) == "clean"  # remembered

    events.publish("indicator", answers._ident(key))  # what another process's new answer announces

    _until(lambda: _verdict(client, user, domain), "malicious")


def test_a_new_answer_fetched_here_shows_on_the_next_check(client, app_ctx, user, add_key, heard, monkeypatch):
    add_key(user)
    domain = "refreshed-evil.example.org"  # the emulator judges it malicious
    _cache(domain, malicious=0)
    assert _verdict(client, user, domain) == "clean"  # remembered from now on
    # Its event is lost (a Redis blip): only this process's own drop can show the new answer.
    monkeypatch.setattr(answers, "publish", lambda kind, ident: None)

    refreshed = check(client, user, domain, force_refresh=True)
    assert refreshed.status_code == 200 and refreshed.json["source"] == "virustotal", refreshed.json
    assert refreshed.json["summary"]["verdict"] == "malicious"

    again = check(client, user, domain)
    assert (again.json["source"], again.json["summary"]["verdict"]) == ("cache", "malicious")


def test_a_new_answer_fetched_by_another_web_process_shows_here(client, app, user, add_key, start_web, monkeypatch):
    """Through the run's own Redis, shared with a gunicorn process (its cache and its events)."""
    if not app.config.get("REDIS_URL"):
        pytest.skip("needs TEST_REDIS_URL: embedded, the two processes share no events")
    monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", LONG_MEMORY)
    wait_until_hearing(app)
    add_key(user)
    other = start_web()
    domain = "elsewhere-evil.example.org"
    with app.app_context():
        _cache(domain, malicious=0)
    assert _verdict(client, user, domain) == "clean"  # remembered

    url = f"{other.url}/api/check_ioc"
    refreshed = requests.post(url, json={"ioc": domain, "force_refresh": True}, headers=user.headers, timeout=30)
    assert refreshed.status_code == 200 and refreshed.json()["summary"]["verdict"] == "malicious", refreshed.text

    _until(lambda: _verdict(client, user, domain), "malicious")


@pytest.mark.parametrize("without", ["redis", "memory"])
def test_without_events_a_changed_entry_shows_on_the_next_check(
    request, client, app, app_ctx, user, monkeypatch, without
):
    if without == "redis":
        monkeypatch.setitem(app.config, "REDIS_URL", None)
        monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", LONG_MEMORY)
    else:  # events are heard, but the memory is switched off
        request.getfixturevalue("heard")
        monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", 0)
    domain = f"no-memory-{without}.example.org"
    _cache(domain, malicious=0)
    assert _verdict(client, user, domain) == "clean"

    _cache(domain, malicious=5)

    assert _verdict(client, user, domain) == "malicious"
