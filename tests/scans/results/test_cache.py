"""The read cache: reports and history pages come from it until a scan of that user changes,
and never after. A broken cache only costs speed."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from scanner.extensions import cache
from scanner.files.models import File
from scanner.scans.models import Scan
from scanner.scans.results.cache import bump_scans_version

from .factory import engines, make_scan


def _ratio(client, user, scan) -> str:
    return client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json["detection_ratio"]


def _history_ratios(client, user) -> list[str]:
    return [s["detection_ratio"] for s in client.get("/api/scan/results", headers=user.headers).json["scans"]]


def _rewrite_counts_behind_the_orm(db, scan, malicious: int) -> None:
    """A Core UPDATE, which no ORM event sees: only an explicit bump can retire cached reads."""
    db.session.execute(
        update(Scan).where(Scan.id == scan.id).values(malicious=malicious, detection_ratio=f"{malicious}/70")
    )
    db.session.commit()


def test_reads_are_served_from_the_cache_until_the_version_is_bumped(client, db, user):
    scan = make_scan(user, malicious=1, undetected=69)
    db.session.commit()
    assert _ratio(client, user, scan) == "1/70"
    assert _history_ratios(client, user) == ["1/70"]

    _rewrite_counts_behind_the_orm(db, scan, 7)
    # Still the cached answers: the cache really is in front of the database.
    assert _ratio(client, user, scan) == "1/70"
    assert _history_ratios(client, user) == ["1/70"]

    bump_scans_version(user.id)

    assert _ratio(client, user, scan) == "7/70"
    assert _history_ratios(client, user) == ["7/70"]


def test_an_orm_change_to_a_scan_is_seen_at_once_without_an_explicit_bump(client, db, user):
    scan = make_scan(user, malicious=1, undetected=69)
    db.session.commit()
    assert _ratio(client, user, scan) == "1/70"
    assert _history_ratios(client, user) == ["1/70"]

    scan.malicious, scan.detection_ratio = 4, "4/70"
    db.session.commit()

    assert _ratio(client, user, scan) == "4/70"
    assert _history_ratios(client, user) == ["4/70"]


def test_a_new_scan_shows_in_a_cached_history_at_once(client, db, user):
    make_scan(user)
    db.session.commit()
    assert len(_history_ratios(client, user)) == 1

    make_scan(user, status="pending")
    db.session.commit()

    assert len(_history_ratios(client, user)) == 2


def test_pipeline_bookkeeping_does_not_retire_the_cache(client, db, user):
    scan = make_scan(user, malicious=1, undetected=69)
    db.session.commit()
    assert _history_ratios(client, user) == ["1/70"]
    _rewrite_counts_behind_the_orm(db, scan, 9)

    scan = db.session.get(Scan, scan.id)
    scan.attempts += 1  # no read shows it, so the cached page stays
    db.session.commit()

    assert _history_ratios(client, user) == ["1/70"]


def test_deleting_the_file_makes_its_cached_report_404(client, db, user):
    scan = make_scan(user, engines=engines(malicious=1, undetected=3))
    db.session.commit()
    url = f"/api/scan/{scan.id}/results"
    assert client.get(url, headers=user.headers).status_code == 200

    db.session.delete(db.session.get(File, scan.file_id))
    db.session.commit()

    assert client.get(url, headers=user.headers).status_code == 404
    assert client.get("/api/scan/results", headers=user.headers).json["scans"] == []


def test_one_users_change_leaves_another_users_cache_alone(client, db, make_user):
    alice, bob = make_user(), make_user()
    make_scan(alice)
    bobs = make_scan(bob, malicious=1, undetected=69)
    db.session.commit()
    assert _history_ratios(client, bob) == ["1/70"]
    _rewrite_counts_behind_the_orm(db, bobs, 5)

    bump_scans_version(alice.id)

    assert _history_ratios(client, bob) == ["1/70"]


def test_unfinished_scans_are_never_served_from_the_cache(client, db, user):
    scan = make_scan(user, status="scanning")
    db.session.commit()
    assert client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json["status"] == "scanning"

    db.session.execute(update(Scan).where(Scan.id == scan.id).values(stage="uploading"))
    db.session.commit()

    assert client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json["stage"] == "uploading"


@pytest.fixture
def dead_cache(app):
    """The app's cache pointed at a Redis nobody listens on, as when Redis goes down."""
    original = app.extensions["cache"][cache]
    cache.init_app(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://127.0.0.1:1/0"})
    yield
    app.extensions["cache"][cache] = original


def test_a_dead_cache_falls_back_to_the_database(client, db, user, dead_cache, caplog):
    scan = make_scan(user, malicious=2, undetected=68)
    db.session.commit()

    assert _ratio(client, user, scan) == "2/70"
    assert _history_ratios(client, user) == ["2/70"]
    r = client.get(f"/api/scan/{scan.id}/export?format=csv", headers=user.headers)
    assert r.status_code == 200

    scan.malicious, scan.detection_ratio = 3, "3/70"
    db.session.commit()  # the bump after this commit fails quietly too
    bump_scans_version(user.id)

    assert _ratio(client, user, scan) == "3/70"
    assert "results cache" in caplog.text
