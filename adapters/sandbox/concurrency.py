"""How many calls the sandbox served at once: the peak and the average, overall and per endpoint.

The average is the calls' summed durations over the span from the first call's start to the last
one's end: 3.0 means three calls were in flight all the time. Calls refused with 429 are counted
apart: they never held one of Autotask's threads, so peak and average leave them out. Sandbox
only (GET /_sandbox/concurrency), for benches that check the connector keeps the threads busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from adapters.sandbox.core import Call


def peak(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals (start, end) overlapping at one moment; one ending as another starts
    does not overlap it."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda event: (event[0], event[1]),  # at the same moment, ends before starts
    )
    current = highest = 0
    for _, change in events:
        current += change
        highest = max(highest, current)
    return highest


def concurrency_report(calls: Sequence[Call]) -> dict[str, Any]:
    """Calls, 429s, peak and average concurrency of `calls`, overall and per endpoint."""
    intervals = [(call.started, call.ended) for call in calls]
    if not intervals:
        return {
            "calls": 0,
            "refused_429": 0,
            "span_seconds": 0.0,
            "busy_seconds": 0.0,
            "peak": 0,
            "average": 0.0,
            "by_endpoint": {},
        }
    span = max(end for _, end in intervals) - min(start for start, _ in intervals)

    def summary(group: Sequence[Call]) -> dict[str, Any]:
        served = [call for call in group if call.status != 429]
        busy = sum(call.duration_ms for call in served) / 1000
        return {
            "calls": len(group),
            "refused_429": len(group) - len(served),
            "busy_seconds": round(busy, 6),
            "peak": peak([(call.started, call.ended) for call in served]),
            "average": round(busy / span, 4) if span > 0 else 0.0,
        }

    by_endpoint: dict[str, list[Call]] = {}
    for call in calls:
        by_endpoint.setdefault(call.endpoint, []).append(call)
    return {
        **summary(calls),
        "span_seconds": round(span, 6),
        "by_endpoint": {name: summary(group) for name, group in sorted(by_endpoint.items())},
    }
