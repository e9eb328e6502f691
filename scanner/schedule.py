"""What the beat process runs periodically."""

from __future__ import annotations

from flask import Flask


def beat_schedule(app: Flask) -> dict:
    sweep = app.config["SCAN_SWEEP_SECONDS"]
    return {
        "sweep-scans": {"task": "scanner.scans.tasks.sweep_scans", "schedule": sweep},
        "sweep-lookups": {
            "task": "scanner.lookups.tasks.sweep_lookups",
            "schedule": app.config["LOOKUP_SWEEP_SECONDS"],
        },
        "prune-old-records": {
            "task": "scanner.housekeeping.prune_old_records",
            "schedule": app.config["PRUNE_INTERVAL_SECONDS"],
        },
    }
