"""The workloads of side_by_side.py: webhooks posted over HTTP and what came of them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from statistics import median
from typing import TYPE_CHECKING, Any

import requests
from harness import BenchError, percentile

if TYPE_CHECKING:
    from side_by_side import Connector

#: Calls Autotask serves without authentication, outside the thread limit and the hourly count.
UNMETERED = ("ZoneInformation", "getZoneInfo", "wsdl")


def alertmanager_body(alerts: int, key: str) -> dict[str, Any]:
    """An Alertmanager v4 webhook with `alerts` distinct firing alerts, as Alertmanager sends it."""
    entries = [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskFull",
                "instance": f"srv-{key}-{i}:9100",
                "job": "node",
                "severity": "warning",
                "mountpoint": "/var",
            },
            "annotations": {
                "summary": f"Disk full on srv-{key}-{i}",
                "description": "/var is 99% full",
            },
            "startsAt": "2026-11-27T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.net/graph?g0.expr=disk",
            "fingerprint": f"{key}-{i:06d}",
        }
        for i in range(alerts)
    ]
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "autotask",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "job": "node", "severity": "warning"},
        "commonAnnotations": {"description": "/var is 99% full"},
        "externalURL": "http://alertmanager.example.net",
        "alerts": entries,
    }


def ingest(
    url: str, headers: Sequence[str], alerts: int, rounds: int, run_id: str
) -> dict[str, Any]:
    """Time `rounds` webhooks of `alerts` new alerts each (after one untimed warm-up)."""
    session = requests.Session()
    for header in headers:
        name, _, value = header.partition(": ")
        session.headers[name] = value
    warm = session.post(url, json=alertmanager_body(1, f"{run_id}-warm"), timeout=120)
    times, statuses = [], []
    for index in range(rounds):
        body = alertmanager_body(alerts, f"{run_id}-{index}")
        start = time.perf_counter()
        answer = session.post(url, json=body, timeout=300)
        times.append((time.perf_counter() - start) * 1000)
        statuses.append(answer.status_code)
    ok = [ms for ms, status in zip(times, statuses, strict=True) if 200 <= status < 300]
    return {
        "alerts": alerts,
        "ms": [round(ms, 1) for ms in times],
        "statuses": statuses,
        "warm_up_status": warm.status_code,
        "median_ms": round(median(ok), 1) if ok else None,
    }


def generic(key: str, status: str) -> dict[str, Any]:
    """A generic-source alert event."""
    body: dict[str, Any] = {
        "id": f"bench-{key}",
        "status": status,
        "severity": "critical",
        "title": f"Disk full on srv-{key}",
        "message": "/var is 99% full",
        "host": f"srv-{key}",
    }
    if status == "acknowledged":
        body |= {"acknowledged_by": "jane", "note": "cleaning up /var"}
    if status == "cleared":
        body["message"] = "/var back to 40%"
    return body


def _posted(answer: requests.Response) -> int:
    """The alert id of an accepted single-alert webhook."""
    if answer.status_code != 202:
        raise BenchError(f"webhook answered {answer.status_code}: {answer.text[:300]}")
    alert_id: int = answer.json()["accepted"][0]["alert_id"]
    return alert_id


def _time(text: str | None) -> float | None:
    """An API time (ISO 8601; naive = UTC) as a Unix timestamp."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _call_name(call: dict[str, Any]) -> str:
    if call["api"] == "rest":
        return f"{call['method']} {call['endpoint']}"
    return f"{call['operation']} {call['endpoint'].removeprefix('soap:')}"


def _unmetered(call: dict[str, Any]) -> bool:
    return call["endpoint"] in UNMETERED or call["operation"] in UNMETERED


def count_calls(connector: Connector, lifecycles: int, run_id: str) -> dict[str, Any]:
    """Autotask calls made for `lifecycles` fire -> ack -> clear lifecycles (sandbox call log)."""
    before = len(connector.calls())
    keys = [f"{run_id}-{i}" for i in range(lifecycles)]
    for status in ("active", "acknowledged", "cleared"):
        for key in keys:
            _posted(connector.post("generic", generic(key, status)))
        if not connector.drain(timeout=300):
            raise BenchError(f"calls: deliveries of {status} events not done in 300 s")
    calls = connector.calls()[before:]
    completed = sum(1 for ticket in connector.tickets().values() if ticket["status"] == 5)
    metered = [call for call in calls if not _unmetered(call)]
    names = Counter(_call_name(call) for call in metered)
    return {
        "lifecycles": lifecycles,
        "tickets_completed": completed,
        "calls": len(calls),
        "zone_lookups": len(calls) - len(metered),
        "per_lifecycle": len(calls) / lifecycles,
        "per_lifecycle_without_zone": len(metered) / lifecycles,
        "breakdown": {name: round(n / lifecycles, 2) for name, n in names.most_common()},
        "failed_calls": sum(1 for call in calls if call["status"] >= 400),
    }


def _wait_ticket(connector: Connector, alert_id: int, timeout: float) -> dict[str, Any] | None:
    """The alert's finished create delivery, polled for; None at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in connector.get("deliveries", alert_id=alert_id)["deliveries"]:
            if delivery["outcome"] == "created" and delivery["finished_at"]:
                return dict(delivery)
        time.sleep(0.02)
    return None


def idle(connector: Connector, alerts: int, run_id: str, spacing: float = 0.2) -> dict[str, Any]:
    """Alerts fired one at a time: each waits for its ticket, then `spacing` seconds."""
    ticket_ms, webhook_ms, missing = [], [], 0
    for index in range(alerts):
        sent = time.time()
        start = time.perf_counter()
        answer = connector.post("generic", generic(f"{run_id}-{index}", "active"))
        webhook_ms.append((time.perf_counter() - start) * 1000)
        delivery = _wait_ticket(connector, _posted(answer), timeout=60)
        finished = _time(delivery["finished_at"]) if delivery else None
        if finished is None:
            missing += 1
        else:
            ticket_ms.append((finished - sent) * 1000)
        time.sleep(spacing)
    return {
        "alerts": alerts,
        "tickets": len(ticket_ms),
        "missing": missing,
        "ticket_p50_ms": percentile(ticket_ms, 0.5),
        "ticket_p99_ms": percentile(ticket_ms, 0.99),
        "webhook_p50_ms": percentile(webhook_ms, 0.5),
        "webhook_p99_ms": percentile(webhook_ms, 0.99),
    }


def storm(connector: Connector, alerts: int, timeout: float, run_id: str) -> dict[str, Any]:
    """`alerts` lifecycles posted at once (8 senders: all fire, then ack, then clear); then
    whatever became of them by the deadline."""
    keys = [f"{run_id}-{i}" for i in range(alerts)]
    before = len(connector.calls())
    sent: dict[str, float] = {}
    alert_ids: dict[str, int] = {}
    refused: Counter[int] = Counter()
    local = threading.local()

    def post(key: str, status: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(connector.hooks.headers)
        now = time.time()
        answer = local.session.post(
            f"{connector.url}/hooks/generic", json=generic(key, status), timeout=120
        )
        if answer.status_code != 202:
            refused[answer.status_code] += 1
            return
        if status == "active":
            sent[key] = now
            alert_ids[key] = answer.json()["accepted"][0]["alert_id"]

    start = time.time()
    pool = ThreadPoolExecutor(8)
    try:
        for status in ("active", "acknowledged", "cleared"):
            list(pool.map(post, keys, [status] * alerts))
    finally:
        # On Ctrl-C, do not post the rest of the queue first.
        pool.shutdown(wait=True, cancel_futures=True)
    posted_s = time.time() - start
    drained = connector.drain(timeout=max(1.0, timeout - posted_s), poll=0.5)
    wall = time.time() - start
    calls = connector.calls()[before:]
    outcome = _storm_outcome(connector, keys, sent, alert_ids)
    return {
        "alerts": alerts,
        "drained": drained,
        "posted_s": round(posted_s, 2),
        "wall_s": round(wall, 2),
        "webhooks_refused": {str(code): n for code, n in refused.items()},
        "calls": len(calls),
        "calls_429": sum(1 for call in calls if call["status"] == 429),
        "calls_failed": sum(1 for call in calls if call["status"] >= 400 or call["status"] == 0),
        "concurrency": _concurrency(calls),
        **outcome,
    }


def _storm_outcome(
    connector: Connector, keys: list[str], sent: dict[str, float], alert_ids: dict[str, int]
) -> dict[str, Any]:
    """Tickets, latencies and per-alert order of the storm's alerts."""
    deliveries: dict[int, list[dict[str, Any]]] = {}
    for delivery in connector.every("deliveries", "deliveries"):
        deliveries.setdefault(delivery["alert_id"], []).append(delivery)
    ticket_of = {
        alert["id"]: (alert["ticket"] or {}).get("ticket_id")
        for alert in connector.every("alerts", "alerts", source="generic")
    }
    tickets = connector.tickets()
    latencies, created, done, held, checked, broken = [], 0, 0, 0, 0, []
    for key in keys:
        alert_id = alert_ids.get(key)
        if alert_id is None:
            continue
        own = sorted(deliveries.get(alert_id, []), key=lambda d: d["event_id"])
        create = next((d for d in own if d["outcome"] == "created"), None)
        finished = _time(create["finished_at"]) if create else None
        ticket = tickets.get(ticket_of.get(alert_id))
        if ticket is not None:
            created += 1
        if finished is not None:
            latencies.append((finished - sent[key]) * 1000)
        if len(own) == 3 and all(d["state"] == "done" for d in own):
            done += 1
            checked += 1
            if _in_order(own, ticket):
                held += 1
            elif len(broken) < 5:
                broken.append(key)
    return {
        "tickets_created": created,
        "lifecycles_done": done,
        "order_checked": checked,
        "order_held": held,
        "order_broken_examples": broken,
        "ticket_p50_ms": percentile(latencies, 0.5),
        "ticket_p99_ms": percentile(latencies, 0.99),
    }


def _in_order(own: list[dict[str, Any]], ticket: dict[str, Any] | None) -> bool:
    """fire -> ack -> clear held: created, then noted/updated, then completed, finished in that
    order, and the sandbox's ticket completed with the acknowledgement note before any clear
    note."""
    outcomes = [d["outcome"] for d in own]
    finished = [_time(d["finished_at"]) or 0.0 for d in own]
    if outcomes[0] != "created" or outcomes[-1] != "completed" or finished != sorted(finished):
        return False
    if ticket is None or ticket.get("status") != 5:
        return False
    titles = [note.get("title") or "" for note in ticket.get("notes", [])]
    acked = [i for i, title in enumerate(titles) if "acknowledged" in title]
    cleared = [i for i, title in enumerate(titles) if "cleared" in title]
    return bool(acked) and all(i > acked[0] for i in cleared)


def _concurrency(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Average concurrent metered calls: sum of their durations / the span from the first's start
    to the last's end (the sandbox's call log: start time and duration of every call), in all
    and per endpoint: Autotask's bound of 3 threads holds per endpoint, so the busiest
    endpoint's average is the one measured against it."""
    metered = [call for call in calls if not _unmetered(call) and call["status"]]
    if not metered:
        return {
            "average": 0.0,
            "share_of_3": 0.0,
            "busy_s": 0.0,
            "span_s": 0.0,
            "max": 0,
            "by_endpoint": {},
            "busiest": "",
        }
    starts = [_time(call["time"]) or 0.0 for call in metered]
    ends = [s + call["duration_ms"] / 1000 for s, call in zip(starts, metered, strict=True)]
    span = max(ends) - min(starts)

    def average(group: list[dict[str, Any]]) -> float:
        busy = sum(call["duration_ms"] for call in group) / 1000
        return busy / span if span > 0 else 0.0

    groups: dict[str, list[dict[str, Any]]] = {}
    for call in metered:
        groups.setdefault(call["endpoint"], []).append(call)
    by_endpoint = {
        name: {
            "calls": len(group),
            "average": round(average(group), 3),
            "max": max(call["concurrent"] for call in group),
        }
        for name, group in sorted(groups.items())
    }
    busiest = max(by_endpoint, key=lambda name: by_endpoint[name]["average"])
    return {
        "average": round(average(metered), 3),
        "busy_s": round(sum(call["duration_ms"] for call in metered) / 1000, 2),
        "span_s": round(span, 2),
        "max": max(call["concurrent"] for call in metered),
        "by_endpoint": by_endpoint,
        "busiest": busiest,
        "share_of_3": round(by_endpoint[busiest]["average"] / 3, 3),
        "source": "sandbox call log (start time, duration)",
    }
