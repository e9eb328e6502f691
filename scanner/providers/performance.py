"""Seed 002's performance view: this machine's and this process's memory and CPU (psutil),
judged against thresholds an operator sets (PERF_* in config.py, documented in the README)."""

from __future__ import annotations

import time

import psutil
from flask import current_app

from ..db_types import utcnow

# CPU use is a rate: two readings this far apart.
CPU_SAMPLE_SECONDS = 0.1


def _sample() -> tuple[float, float, psutil.Process]:
    process = psutil.Process()
    psutil.cpu_percent(interval=None)
    process.cpu_percent(interval=None)
    time.sleep(CPU_SAMPLE_SECONDS)
    return psutil.cpu_percent(interval=None), process.cpu_percent(interval=None), process


def performance() -> dict:
    cfg = current_app.config
    system_cpu, process_cpu, process = _sample()
    memory = psutil.virtual_memory()
    rss = process.memory_info().rss
    memory_high = memory.percent > cfg["PERF_SYSTEM_MEMORY_PERCENT"]
    cpu_high = system_cpu > cfg["PERF_SYSTEM_CPU_PERCENT"]
    rss_high = rss > cfg["PERF_PROCESS_RSS_BYTES"]

    issues, recommendations = [], []
    if memory_high:
        issues.append(f"System memory use {memory.percent:.1f}% is above {cfg['PERF_SYSTEM_MEMORY_PERCENT']:g}%")
        recommendations.append("Add memory or move workers to another machine")
    if cpu_high:
        issues.append(f"System CPU use {system_cpu:.1f}% is above {cfg['PERF_SYSTEM_CPU_PERCENT']:g}%")
        recommendations.append("Add CPU or lower WEB_CONCURRENCY / WORKER_CONCURRENCY on this machine")
    if rss_high:
        issues.append(f"This process holds {rss} bytes, above {cfg['PERF_PROCESS_RSS_BYTES']} bytes")
        recommendations.append("Restart the web process and look for what grows (large exports, streams)")
    return {
        "timestamp": utcnow().isoformat(),
        "system_metrics": {
            "system": {
                "memory": {"percent": memory.percent, "threshold_exceeded": memory_high},
                "cpu": {"percent": system_cpu, "threshold_exceeded": cpu_high},
            },
            "process": {
                "memory": {"rss": rss, "threshold_exceeded": rss_high},
                "cpu": process_cpu,
            },
        },
        "performance_health": {
            "status": "degraded" if issues else "healthy",
            "issues": issues,
            "recommendations": recommendations,
        },
    }
