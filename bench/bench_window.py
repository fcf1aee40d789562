"""How long one maintenance-window decision takes.

pg_maintenance and the other disruptive modules ask the guard before each table
or key batch, so a decision must stay far below the work it gates.
"""
from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "build" / "collections"))

from ansible_collections.streamops.maintenance.plugins.module_utils.window import (  # noqa: E402
    evaluate,
    parse_blackouts,
    parse_windows,
)

GUIDE_WINDOWS = [
    {"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h",
     "timezone": "America/New_York"},
    {"name": "monthly", "rrule": "FREQ=MONTHLY;BYDAY=1SA;BYHOUR=23;BYMINUTE=0", "duration": "4h",
     "timezone": "America/New_York"},
    {"name": "quarterly", "start": "2027-01-16T22:00:00", "end": "2027-01-17T06:00:00",
     "timezone": "America/New_York"},
]
DAILY = {"name": "lab", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m", "timezone": "UTC"}
BLACKOUTS = [{"start": "2026-12-24", "end": "2027-01-02", "reason": "year-end freeze"}, "2027-07-04"]


def measure(label: str, raw_windows: list, raw_blackouts: list, runs: int = 300) -> float:
    windows = parse_windows(raw_windows, "America/New_York")
    blackouts = parse_blackouts(raw_blackouts, "America/New_York")
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    samples = []
    for i in range(runs):
        now = start + timedelta(hours=7 * i)  # walk across DST changes and the freeze
        began = time.perf_counter()
        evaluate(windows, blackouts, now, required=timedelta(minutes=20))
        samples.append((time.perf_counter() - began) * 1000)
    median = statistics.median(samples)
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1]
    print(f"{label:<44} median {median:7.3f} ms   p99 {p99:7.3f} ms   ({runs} decisions)")
    return median


def main() -> int:
    print("maintenance window decision cost")
    base = measure("guide windows (weekly, monthly, quarterly)", GUIDE_WINDOWS, [])
    frozen = measure("guide windows + blackouts", GUIDE_WINDOWS, BLACKOUTS)
    daily = measure("guide windows + daily lab window + blackouts", [*GUIDE_WINDOWS, DAILY], BLACKOUTS)
    print(f"ratio blackouts/plain {frozen / base:.2f}x, with daily window/plain {daily / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
