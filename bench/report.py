"""The Markdown table and the raw figures of side_by_side.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The README lines between these two hold the latest table (`--update-readme`).
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

NAMES = {
    "noop": "no-op Flask endpoint, gunicorn -w 2 (the framework's ceiling)",
    "alerta": "Alerta 9.1.0 (`alerta-server`, gunicorn -w 2, PostgreSQL)",
    "sqlite": "connector, `make run` (SQLite)",
    "postgresql": "connector, `make run` (PostgreSQL)",
}


def ms(value: float | None) -> str:
    """Milliseconds, or a dash."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ms_list(values: list[float]) -> str:
    """Several milliseconds."""
    return ", ".join(ms(value) for value in values)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _rate_rows(results: dict[str, Any]) -> list[list[str]]:
    systems = results["systems"]

    def rate(name: str) -> float | None:
        wrk = systems.get(name, {}).get("wrk")
        return wrk["accepted_per_s"] if wrk else None

    noop, alerta = rate("noop"), rate("alerta")
    rows = []
    for name in ("noop", "alerta", "sqlite", "postgresql"):
        wrk = systems.get(name, {}).get("wrk")
        if not wrk:
            continue
        value = wrk["accepted_per_s"]
        shown = f"{value:,.0f} alerts/s ({wrk['not_2xx']:,} non-2xx, {wrk['accepted']:,} accepted)"
        ratios = [f"{value / noop:.3f} of no-op"] if noop else []
        baselines = [f"no-op {noop:,.0f}/s"] if noop and name != "noop" else []
        targets = []
        if name in ("sqlite", "postgresql") and alerta:
            ratios.append(f"{value / alerta:.2f}× Alerta")
            baselines.append(f"Alerta {alerta:,.0f}/s")
            targets.append(f"≥ 10× Alerta: {_verdict(value >= 10 * alerta)}")
        if name in ("sqlite", "postgresql") and noop:
            targets.append(f"stretch ≥ 0.5 of no-op: {_verdict(value >= 0.5 * noop)}")
        ratio, baseline, target = "; ".join(ratios), "; ".join(baselines), "; ".join(targets)
        rows.append([f"accepted alerts/s: {NAMES[name]}", shown, baseline, ratio, target])
    for name in ("sqlite", "postgresql"):
        wrk = systems.get(name, {}).get("wrk")
        if not wrk:
            continue
        base = systems.get("alerta", {}).get("wrk") or systems.get("noop", {}).get("wrk")
        base_name = "Alerta" if systems.get("alerta", {}).get("wrk") else "no-op"
        baseline = (
            f"{base_name} {ms(base['p50_us'] / 1000)} / {ms(base['p99_us'] / 1000)} ms"
            if base
            else "–"
        )
        rows.append(
            [
                f"webhook latency p50 / p99 under that load: {NAMES[name]}",
                f"{ms(wrk['p50_us'] / 1000)} / {ms(wrk['p99_us'] / 1000)} ms",
                baseline,
                "",
                "",
            ]
        )
    return rows


def _ingest_rows(results: dict[str, Any]) -> list[list[str]]:
    systems = results["systems"]
    alerta = systems.get("alerta", {}).get("ingest", {}).get("median_ms")
    rows = []
    for name in ("noop", "alerta", "sqlite", "postgresql"):
        ingest = systems.get(name, {}).get("ingest")
        if not ingest:
            continue
        value = ingest["median_ms"]
        ratio = f"{alerta / value:.1f}× faster than Alerta" if alerta and value else ""
        if name in ("noop", "alerta"):
            ratio = ""
        rows.append(
            [
                f"{ingest['alerts']}-alert Alertmanager webhook, median of"
                f" {len(ingest['ms'])}: {NAMES[name]}",
                f"{ms(value)} ms (rounds {ms_list(ingest['ms'])}; statuses"
                f" {sorted(set(ingest['statuses']))})",
                f"Alerta {ms(alerta)} ms" if alerta and name in ("sqlite", "postgresql") else "",
                ratio,
                "",
            ]
        )
    return rows


def _calls_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for flavour, counted in results["calls"].items():
        breakdown = ", ".join(f"{name} {n:g}" for name, n in counted["breakdown"].items())
        rows.append(
            [
                f"Autotask calls per fire → ack → clear lifecycle, {flavour.upper()}",
                f"{counted['per_lifecycle_without_zone']:.2f} ({breakdown}), plus"
                f" {counted['zone_lookups']} zone lookup(s) in {counted['lifecycles']} lifecycles"
                f" ({counted['per_lifecycle']:.2f} with them)",
                "issue 13 found 6 + a zone lookup" if flavour == "rest" else "",
                "",
                f"≤ 4 (zone lookups apart: cached): "
                f"{_verdict(counted['per_lifecycle_without_zone'] <= 4)};"
                f" {counted['tickets_completed']}/{counted['lifecycles']} completed",
            ]
        )
    return rows


def _latency_rows(results: dict[str, Any]) -> list[list[str]]:
    latency = results["latency"]
    rows = []
    added = results["options"]["storm_latency_ms"]
    idle = latency.get("idle")
    if idle:
        rows.append(
            [
                f"alert → ticket p50 / p99 at idle ({idle['alerts']} alerts one at a time)",
                f"{ms(idle['ticket_p50_ms'])} / {ms(idle['ticket_p99_ms'])} ms"
                f" ({idle['tickets']} tickets)",
                f"{added:.0f} ms per Autotask call",
                f"{idle['ticket_p50_ms'] / added:.1f}× one call" if idle["ticket_p50_ms"] else "",
                "",
            ]
        )
        rows.append(
            [
                "webhook latency p50 / p99 at idle: "
                + NAMES[results["options"].get("storm_database", "sqlite")],
                f"{ms(idle['webhook_p50_ms'])} / {ms(idle['webhook_p99_ms'])} ms",
                "",
                "",
                "",
            ]
        )
    storm = latency.get("storm")
    if storm:
        n = storm["alerts"]
        rows.append(
            [
                f"alert → ticket p50 / p99 in a {n}-alert storm"
                + ("" if storm["drained"] else " (of the tickets made by the deadline)"),
                f"{ms(storm['ticket_p50_ms'])} / {ms(storm['ticket_p99_ms'])} ms",
                f"{added:.0f} ms per Autotask call",
                "",
                "",
            ]
        )
        finished = "" if storm["drained"] else f", NOT finished within {storm['wall_s']:.0f} s"
        rows.append(
            [
                f"storm of {n} lifecycles: tickets created, 429s, order per alert",
                f"{storm['tickets_created']}/{n} tickets, {storm['calls_429']} × 429,"
                f" order held in {storm['order_held']}/{storm['order_checked']} finished"
                f" lifecycles; {storm['lifecycles_done']}/{n} finished in"
                f" {storm['wall_s']:.0f} s{finished}",
                "",
                "",
                "all created: "
                + _verdict(storm["tickets_created"] == n)
                + f"; 0 × 429: {_verdict(storm['calls_429'] == 0)}; order: "
                + _verdict(storm["order_held"] == storm["order_checked"] == n),
            ]
        )
        concurrency = storm["concurrency"]
        busiest = concurrency.get("busiest") or ""
        per_endpoint = concurrency.get("by_endpoint") or {}
        top = per_endpoint.get(busiest, {"average": concurrency["average"], "max": 0})
        others = ", ".join(
            f"{name} {figures['average']:.2f}"
            for name, figures in per_endpoint.items()
            if name != busiest
        )
        rows.append(
            [
                "average concurrent Autotask calls during the storm, busiest endpoint (sandbox"
                " call log: each call's start and duration; Autotask's 3 threads are per"
                " endpoint)",
                f"{busiest or 'all'} {top['average']:.2f} (peak {top['max']});"
                f" {others or 'no other endpoint'}; all endpoints together"
                f" {concurrency['average']:.2f} over {concurrency['span_s']:.0f} s",
                "bound: 3 threads per endpoint",
                f"{concurrency['share_of_3']:.0%} of the bound",
                f"≥ 2.7: {_verdict(top['average'] >= 2.7)}",
            ]
        )
    return rows


def table(results: dict[str, Any]) -> str:
    """One Markdown table of every figure measured, with its same-run baseline and ratio."""
    rows = _rate_rows(results) + _ingest_rows(results) + _latency_rows(results)
    rows += _calls_rows(results)
    head = ["figure", "this run", "baseline (same run)", "ratio", "issue 13's target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    machine = results["machine"]
    lines.append("")
    options = results["options"]
    wrk = (
        f"; wrk {options['threads']} threads, {options['connections']} connections,"
        f" {options['duration']} s, a new alert per request"
        if any("wrk" in figures for figures in results["systems"].values())
        else ""
    )
    lines.append(
        f"{results['started_at']}, commit {results['commit']}, {machine['cpus']} CPUs, load"
        f" {machine['load_before'][0]:.1f} before / {machine.get('load_after', [0])[0]:.1f}"
        f" after{wrk}."
    )
    if max(machine["load_before"][0], machine.get("load_after", [0])[0]) > machine["cpus"]:
        lines.append("A busy machine (load above its CPUs): the figures are noisy.")
    if results["latency"].get("how"):
        lines.append(f"Sandbox latency set by {results['latency']['how']}.")
    lines += [f"Note: {note}" for note in results["notes"]]
    return "\n".join(lines)


def raw(results: dict[str, Any]) -> str:
    """Every figure as indented JSON (the table left out)."""
    return json.dumps({k: v for k, v in results.items() if k != "table"}, indent=2)


def update_readme(path: Path, table: str) -> None:
    """Replace what stands between the bench markers of `path` with `table`."""
    text = path.read_text(encoding="utf-8")
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"{path} has no {START} … {END} markers")
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")
