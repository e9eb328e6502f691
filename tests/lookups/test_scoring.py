"""The documented scoring rule (scanner/lookups/scoring.py and the README), case by case."""

from __future__ import annotations

import pytest

from scanner.lookups.scoring import evidence, summarize


def report(malicious=0, suspicious=0, harmless=0, undetected=0, timeout=0, reputation=None, results=None) -> dict:
    stats = {
        "malicious": malicious,
        "suspicious": suspicious,
        "harmless": harmless,
        "undetected": undetected,
        "timeout": timeout,
    }
    attributes = {"last_analysis_stats": stats, "last_analysis_results": results or {}}
    if reputation is not None:
        attributes["reputation"] = reputation
    return {"type": "domain", "id": "example.com", "attributes": attributes}


@pytest.mark.parametrize(
    ("counts", "verdict", "score"),
    [
        ({"malicious": 1, "harmless": 69}, "malicious", 51),
        ({"malicious": 7, "harmless": 63}, "malicious", 60),
        ({"malicious": 35, "undetected": 35}, "malicious", 100),
        ({"malicious": 60, "undetected": 10}, "malicious", 100),
        ({"suspicious": 1, "harmless": 89}, "suspicious", 21),
        ({"suspicious": 45, "harmless": 45}, "suspicious", 49),
        ({"harmless": 60, "undetected": 10}, "clean", 0),
        ({"harmless": 60, "reputation": -7}, "clean", 7),
        ({"harmless": 60, "reputation": -250}, "clean", 19),
        ({"harmless": 60, "reputation": 300}, "clean", 0),
    ],
)
def test_verdict_and_score_bands(counts, verdict, score):
    summary = summarize(report(**counts), "ok")
    assert (summary.verdict, summary.score) == (verdict, score)


def test_explanations_name_the_counts():
    assert summarize(report(malicious=3, suspicious=2, harmless=65), "ok").explanation == (
        "3 of 70 engines flag it as malicious and 2 as suspicious"
    )
    assert summarize(report(suspicious=2, harmless=68), "ok").explanation == (
        "No engine flags it as malicious; 2 of 70 find it suspicious"
    )
    assert summarize(report(harmless=50, reputation=-3), "ok").explanation == (
        "None of 50 engines flags it, though its community reputation is -3"
    )


@pytest.mark.parametrize("status", ["not_found", "rate_limited", "pending", "error"])
def test_no_usable_answer_is_unknown_with_no_score(status):
    # A rate-limited or pending entry never yields a verdict, even with a report at hand.
    summary = summarize(report(malicious=10, harmless=50), status)
    assert (summary.verdict, summary.score) == ("unknown", None)


def test_a_hash_virustotal_never_saw_is_unknown_not_clean():
    summary = summarize(None, "not_found")
    assert summary.verdict == "unknown" and summary.score is None
    assert summary.explanation == "VirusTotal has never seen it"


def test_no_engine_verdict_is_unknown():
    summary = summarize(report(timeout=70), "ok")
    assert (summary.verdict, summary.score) == ("unknown", None)


def test_timeouts_are_left_out_of_the_denominator():
    assert summarize(report(malicious=10, harmless=10, timeout=50), "ok").score == 100


def test_evidence_lists_flagging_engines_malicious_first():
    results = {
        "Zeta": {"category": "suspicious", "engine_name": "Zeta", "result": "suspicious"},
        "beta": {"category": "malicious", "engine_name": "beta", "result": "Trojan.X"},
        "Alpha": {"category": "malicious", "engine_name": "Alpha", "result": "Trojan.Y"},
        "Clean": {"category": "harmless", "engine_name": "Clean", "result": "clean"},
    }
    assert [e["engine"] for e in evidence(report(results=results))] == ["Alpha", "beta", "Zeta"]
