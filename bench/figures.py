"""One row of `make bench`'s table (bench/run.py): what each benchmark's `run()` returns a list of."""

from __future__ import annotations

from typing import Any


def figure(
    name: str, unit: str, value: Any, *, baseline: Any = None, target: str | None = None, met: bool | None = None
) -> dict[str, Any]:
    """`ratio` is value / baseline when both are numbers: above 1 is more (faster for a rate,
    slower for a time)."""
    numeric = isinstance(value, int | float) and isinstance(baseline, int | float) and baseline
    return {
        "figure": name,
        "unit": unit,
        "value": round(value, 2) if isinstance(value, float) else value,
        "baseline": round(baseline, 2) if isinstance(baseline, float) else baseline,
        "ratio": round(value / baseline, 3) if numeric else None,
        "target": target,
        "met": met,
    }
