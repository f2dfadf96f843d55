"""Benchmark: issue 13's figures side by side in one run, ratios against baselines of this run.

Run: make bench [BENCH_ARGS="--only rate,ingest --duration 15 --connections 8"]
  or .venv/bin/python bench/side_by_side.py --help

Sections (--only, comma-separated; default all):
- rate: wrk (2 threads, 8 connections, 15 s; a NEW alert per request, bench/wrk_alerts.lua)
  against a no-op Flask endpoint under gunicorn -w 2 (the framework's ceiling), Alerta 9.1.0
  (gunicorn -w 2, PostgreSQL) and the connector as `make run` starts it (`connector run` in a
  scratch directory) on SQLite and on PostgreSQL: accepted (2xx) alerts/s, non-2xx answers,
  webhook latency p50/p99 under that load;
- ingest: one Alertmanager webhook of 500 alerts, timed over HTTP, against the same services
  (Alerta through its /webhooks/prometheus);
- calls: Autotask calls per fire -> ack -> clear lifecycle, REST and SOAP, counted in the
  sandbox's call log (/_sandbox/calls);
- latency: alert -> ticket latency at idle (alerts posted one at a time) and in a storm of 500
  alert lifecycles, with 250 ms added to every sandbox call; the storm's 429s, tickets created,
  per-alert order, and the average number of concurrent Autotask calls against the bound of 3.
Systems of rate and ingest (--systems): noop, alerta, sqlite, postgresql.

Everything it starts is stopped at the end, on failure and on Ctrl-C. Exit status 1 only when
something could not run (a service that does not start, an install that fails).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import workloads  # noqa: E402
from harness import (  # noqa: E402
    BENCH,
    ROOT,
    BenchError,
    Process,
    ensure_venv,
    ensure_wrk,
    free_port,
    fresh_database,
    git_commit,
    install_signal_handlers,
    postgres_ready,
    run_quiet,
    run_wrk,
    say,
    started,
    stop_all,
    wait_http,
)

SECTIONS = ("rate", "ingest", "calls", "latency")
SYSTEMS = ("noop", "alerta", "sqlite", "postgresql")
ALERTA_REQUIREMENTS = ("alerta-server[postgres]==9.1.0", "gunicorn>=23")
HOOK_TOKEN = "bench-hook-token-0123456789abcdef"  # noqa: S105 (a local bench's token)
API_TOKEN = "bench-api-token-0123456789abcdef"  # noqa: S105
#: The checkout whose connector runs (--code).
CODE = [ROOT]
#: The setting the storm uses for the sandbox's base latency, once the connector has it.
LATENCY_SETTING = "SANDBOX_LATENCY_SECONDS"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (defaults: issue 13's)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections: %(default)s")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="for rate and ingest")
    parser.add_argument("--duration", type=int, default=15, help="wrk seconds [15]")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections [8]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--ingest-alerts", type=int, default=500)
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument("--lifecycles", type=int, default=20, help="for calls [20]")
    parser.add_argument("--idle-alerts", type=int, default=50)
    parser.add_argument("--storm-alerts", type=int, default=500)
    parser.add_argument(
        "--storm-database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the database of the idle and storm runs [sqlite, as `make run`]",
    )
    parser.add_argument("--storm-latency-ms", type=float, default=250.0)
    parser.add_argument(
        "--latency-setting",
        default=LATENCY_SETTING,
        help="the connector's setting for the sandbox's base latency in seconds, used when"
        " `connector config` lists it [%(default)s]; otherwise the sandbox's fault plan",
    )
    parser.add_argument(
        "--storm-timeout", type=float, default=300.0, help="seconds the storm may take [300]"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (trust auth); the bench makes its own databases there",
    )
    parser.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="run the connector from this checkout (first on PYTHONPATH) [this one]",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="put the table into README.md and bench/README.md (between the bench markers)",
    )
    args = parser.parse_args(argv)
    args.sections = _choice(parser, "--only", args.only, SECTIONS)
    args.system_list = _choice(parser, "--systems", args.systems, SYSTEMS)
    args.workdir = args.workdir.resolve()
    args.code = args.code.resolve()
    CODE[0] = args.code
    args.logs = args.workdir / "logs"
    args.run_id = uuid.uuid4().hex[:8]
    return args


def _choice(
    parser: argparse.ArgumentParser, option: str, value: str, allowed: tuple[str, ...]
) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        parser.error(f"{option}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [name for name in allowed if name in chosen]


# -- the connector, as `make run` starts it ---------------------------------------------------


class Connector:
    """`connector run` in a fresh scratch directory (its own var/), on free ports."""

    def __init__(
        self, name: str, args: argparse.Namespace, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.folder = args.workdir / "runs" / name
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.port = free_port()
        self.sandbox_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox = f"http://127.0.0.1:{self.sandbox_port}"
        self.env = connector_env(
            {
                "PORT": str(self.port),
                "SANDBOX_PORT": str(self.sandbox_port),
                "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN,
                "CONNECTOR_API_TOKEN": API_TOKEN,
                **(env or {}),
            }
        )
        self.process = Process(
            f"connector-{name}",
            [*connector_command(), "run"],
            cwd=self.folder,
            env=self.env,
            logs=args.logs,
        )
        wait_http(f"{self.url}/healthz", self.process)
        wait_http(f"{self.sandbox}/_sandbox/", self.process)
        self.hooks = requests.Session()
        self.hooks.headers["Authorization"] = f"Bearer {HOOK_TOKEN}"
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {API_TOKEN}"

    def stop(self) -> None:
        """Stop `connector run` and whatever it started."""
        self.process.stop()

    def post(self, source: str, body: Any) -> requests.Response:
        """POST one webhook (JSON) with the hook token."""
        return self.hooks.post(f"{self.url}/hooks/{source}", json=body, timeout=60)

    def get(self, path: str, **params: Any) -> Any:
        """GET the connector's JSON API."""
        answer = self.api.get(f"{self.url}/api/v1/{path}", params=params, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def every(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list of the API."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=1000, offset=len(items), **params)[key]
            items += page
            if len(page) < 1000:
                return items

    def busy(self) -> bool:
        """Whether a delivery is still pending or in progress."""
        return any(
            self.get("deliveries", state=state, limit=1)["deliveries"]
            for state in ("pending", "in_progress")
        )

    def drain(self, timeout: float, poll: float = 0.25) -> bool:
        """Wait until no delivery is pending or in progress; False at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy():
                return True
            if not self.process.alive():
                raise BenchError(f"{self.process.name} exited:\n{self.process.tail()}")
            time.sleep(poll)
        return False

    def calls(self) -> list[dict[str, Any]]:
        """The sandbox's call log."""
        answer = requests.get(f"{self.sandbox}/_sandbox/calls", timeout=60)
        calls: list[dict[str, Any]] = answer.json()
        return calls

    def tickets(self) -> dict[int, dict[str, Any]]:
        """The sandbox's tickets (with notes) by id."""
        answer = requests.get(f"{self.sandbox}/_sandbox/tickets", timeout=60).json()
        return {ticket["id"]: ticket for ticket in answer}


def connector_command() -> list[str]:
    """The venv's `connector` console script (what `make run` runs)."""
    script = Path(sys.executable).parent / "connector"
    return [str(script)] if script.exists() else [sys.executable, "-m", "connector"]


def connector_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without the caller's connector settings, plus `extra`; this checkout's
    code first on the path (a worktree beside the venv's editable install)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CONNECTOR_") and key not in ("DATABASE_URL", "PORT", "SANDBOX_PORT")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE[0]), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def connector_settings(args: argparse.Namespace) -> set[str]:
    """The setting names `connector config` knows (to use newer settings only when there)."""
    folder = args.workdir / "runs" / "config"
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: S603
        [*connector_command(), "config"],
        cwd=folder,
        env=connector_env({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"`connector config` failed:\n{done.stdout}\n{done.stderr}")
    return {line.split(" = ", 1)[0] for line in done.stdout.splitlines() if " = " in line}


# -- the other systems ------------------------------------------------------------------------


def gunicorn_argv(bin_dir: Path, port: int, app: str, *extra: str) -> list[str]:
    """gunicorn -w 2 on 127.0.0.1:`port` (without the control socket of gunicorn 24+, which
    every instance would share in the home directory)."""
    gunicorn = str(bin_dir / "gunicorn")
    argv = [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", *extra]
    help_text = subprocess.run(  # noqa: S603
        [gunicorn, "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--no-control-socket" in help_text:
        argv.append("--no-control-socket")
    return [*argv, app]


def start_noop(args: argparse.Namespace) -> tuple[Process, str]:
    """The no-op Flask app under gunicorn -w 2, with this project's Flask version."""
    from importlib.metadata import version

    requirements = (
        f"flask=={version('flask')}",
        f"werkzeug=={version('werkzeug')}",
        "gunicorn>=23",
    )
    bin_dir = ensure_venv(args.workdir / "noop-venv", requirements, args.logs)
    port = free_port()
    argv = gunicorn_argv(bin_dir, port, "noop_app:app", "--chdir", str(BENCH))
    process = Process("noop", argv, cwd=BENCH, env=dict(os.environ), logs=args.logs)
    wait_http(f"http://127.0.0.1:{port}/", process, ok=(405,))
    return process, f"http://127.0.0.1:{port}"


def start_alerta(args: argparse.Namespace) -> tuple[Process, str]:
    """Alerta 9.1.0 under gunicorn -w 2 on a fresh PostgreSQL database, authentication off."""
    bin_dir = ensure_venv(args.workdir / "alerta-venv", ALERTA_REQUIREMENTS, args.logs)
    fresh_database(f"{args.postgres}/postgres", "bench_alerta")
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/bench_alerta",
        "AUTH_REQUIRED": "False",
    }
    env.pop("ALERTA_SVR_CONF_FILE", None)
    # The schema is made by the first app; made here once, not by two workers at the same time.
    run_quiet(
        [str(bin_dir / "python"), "-c", "from alerta import create_app; create_app()"],
        args.logs / "alerta-schema.log",
        what="Alerta's schema",
        env=env,
    )
    port = free_port()
    argv = gunicorn_argv(bin_dir, port, "alerta:create_app()")
    process = Process("alerta", argv, cwd=args.workdir, env=env, logs=args.logs)
    wait_http(f"http://127.0.0.1:{port}/management/gtg", process)
    return process, f"http://127.0.0.1:{port}"


# -- sections ---------------------------------------------------------------------------------


def postgres_env(args: argparse.Namespace) -> dict[str, str]:
    """The connector on a fresh PostgreSQL database of the bench's own, bench_connector."""
    fresh_database(f"{args.postgres}/postgres", "bench_connector")
    url = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1) + "/bench_connector"
    return {"CONNECTOR_DATABASE_URL": url}


def rate_and_ingest(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Sections rate and ingest, system by system (one fresh instance each)."""
    wrk = ensure_wrk() if "rate" in args.sections else None
    if "rate" in args.sections and wrk is None:
        results["notes"].append("rate: not measured (no wrk)")
    pg = postgres_ready(f"{args.postgres}/postgres")
    for system in args.system_list:
        if system in ("alerta", "postgresql") and not pg:
            say(f"{system}: skipped, PostgreSQL does not answer at {args.postgres}")
            results["notes"].append(f"{system}: not measured (no PostgreSQL at {args.postgres})")
            continue
        say(f"\n== {system}")
        figures: dict[str, Any] = {}
        results["systems"][system] = figures
        if system == "noop":
            process, base = start_noop(args)
            hook, alertmanager, kind = "/hooks/generic", "/hooks/alertmanager", "generic"
            headers: list[str] = []
        elif system == "alerta":
            process, base = start_alerta(args)
            hook, alertmanager, kind = "/alert", "/webhooks/prometheus", "alerta"
            headers = []
        else:
            env = postgres_env(args) if system == "postgresql" else {}
            connector = Connector(f"rate-{system}", args, env)
            process, base = connector.process, connector.url
            hook, alertmanager, kind = "/hooks/generic", "/hooks/alertmanager", "generic"
            headers = [f"Authorization: Bearer {HOOK_TOKEN}"]
        with started(process):
            if "ingest" in args.sections:
                figures["ingest"] = workloads.ingest(
                    base + alertmanager,
                    headers,
                    args.ingest_alerts,
                    args.ingest_rounds,
                    f"{args.run_id}-{system}",
                )
                say(f"  500-alert webhook: {report.ms_list(figures['ingest']['ms'])} ms")
            if wrk is not None:
                say(f"  wrk {args.duration} s, {args.connections} connections: {base}{hook}")
                figures["wrk"] = run_wrk(
                    wrk,
                    base + hook,
                    kind,
                    f"{args.run_id}-{system}",
                    threads=args.threads,
                    connections=args.connections,
                    duration=args.duration,
                    headers=headers,
                )
                wrk_figures = figures["wrk"]
                say(
                    f"  accepted {wrk_figures['accepted_per_s']:.0f} alerts/s,"
                    f" non-2xx {wrk_figures['not_2xx']}, statuses {wrk_figures['statuses']}"
                )


def calls_section(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Autotask calls per fire -> ack -> clear lifecycle, REST and SOAP, no added latency."""
    for flavour in ("rest", "soap"):
        say(f"\n== calls per lifecycle, {flavour.upper()}")
        env = {"CONNECTOR_AUTOTASK_API": flavour, "CONNECTOR_SANDBOX_LATENCY_TIERS": "[]"}
        connector = Connector(f"calls-{flavour}", args, env)
        try:
            results["calls"][flavour] = workloads.count_calls(
                connector, args.lifecycles, f"{args.run_id}-{flavour}"
            )
        finally:
            connector.stop()
        counted = results["calls"][flavour]
        say(
            f"  {counted['per_lifecycle_without_zone']:.2f} calls per lifecycle"
            f" {counted['breakdown']}, plus {counted['zone_lookups']} zone lookup(s) in"
            f" {args.lifecycles}"
        )


def latency_section(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Idle and storm alert -> ticket latency with the sandbox slowed to --storm-latency-ms."""
    say(
        f"\n== alert -> ticket latency, {args.storm_latency_ms:.0f} ms per Autotask call,"
        f" {args.storm_database}"
    )
    seconds = args.storm_latency_ms / 1000
    # Usage-based latency tiers off: the only added latency is the base one asked for.
    env = {"CONNECTOR_SANDBOX_LATENCY_TIERS": "[]"}
    if args.storm_database == "postgresql":
        env |= postgres_env(args)
    setting = args.latency_setting
    if setting in connector_settings(args):
        env[f"CONNECTOR_{setting}"] = str(seconds)
        how = f"CONNECTOR_{setting}={seconds}"
    else:
        how = (
            f"POST /_sandbox/faults latency_ms={args.storm_latency_ms:.0f}: this connector has no"
            f" {setting} setting"
        )
    say(f"  sandbox latency by {how}")
    results["latency"]["how"] = how
    connector = Connector("latency", args, env)
    try:
        if f"CONNECTOR_{setting}" not in env:
            answer = requests.post(
                f"{connector.sandbox}/_sandbox/faults",
                json={"latency_ms": args.storm_latency_ms},
                timeout=10,
            )
            answer.raise_for_status()
        idle = workloads.idle(connector, args.idle_alerts, f"{args.run_id}-idle")
        results["latency"]["idle"] = idle
        say(
            f"  idle: alert -> ticket p50 {report.ms(idle['ticket_p50_ms'])}"
            f" p99 {report.ms(idle['ticket_p99_ms'])} ms; webhook p50"
            f" {report.ms(idle['webhook_p50_ms'])} p99 {report.ms(idle['webhook_p99_ms'])} ms"
        )
        storm = workloads.storm(
            connector, args.storm_alerts, args.storm_timeout, f"{args.run_id}-storm"
        )
        results["latency"]["storm"] = storm
        say(
            f"  storm: {storm['lifecycles_done']}/{storm['alerts']} lifecycles in"
            f" {storm['wall_s']:.1f} s, tickets {storm['tickets_created']}, 429s"
            f" {storm['calls_429']}, order held {storm['order_held']}/{storm['order_checked']},"
            f" concurrency {storm['concurrency']['average']:.2f}"
        )
    finally:
        connector.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the table and the raw figures, write the JSON."""
    args = parse_args(argv)
    install_signal_handlers()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(args.code),
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "options": {
            key: value
            for key, value in vars(args).items()
            if key
            not in ("workdir", "logs", "output", "sections", "system_list", "update_readme", "code")
        },
        "notes": [],
        "systems": {},
        "calls": {},
        "latency": {},
    }
    say(f"bench run {args.run_id}: {', '.join(args.sections)}; logs in {args.logs}")
    status = 0
    try:
        if {"rate", "ingest"} & set(args.sections):
            rate_and_ingest(args, results)
        if "calls" in args.sections:
            calls_section(args, results)
        if "latency" in args.sections:
            latency_section(args, results)
    except BenchError as e:
        say(f"\nFAILED: {e}")
        results["notes"].append(f"failed: {str(e).splitlines()[0]}")
        status = 1
    except (requests.RequestException, OSError, ValueError, KeyError) as e:
        traceback.print_exc()
        say(f"\nFAILED: {e!r}")
        results["notes"].append(f"failed: {e!r}")
        status = 1
    except KeyboardInterrupt:
        say("\ninterrupted: stopping everything this run started")
        results["notes"].append("interrupted")
        status = 130
    finally:
        stop_all()
    results["machine"]["load_after"] = os.getloadavg()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    table = report.table(results)
    results["table"] = table
    say("\n" + table)
    say("\nRaw figures:\n" + report.raw(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    say(f"\nwritten to {args.output}")
    whole = args.sections == list(SECTIONS) and args.system_list == list(SYSTEMS)
    if args.update_readme and not (status == 0 and whole):
        say("READMEs not updated: only a whole run without failure goes there")
    elif args.update_readme:
        for readme in (ROOT / "README.md", BENCH / "README.md"):
            report.update_readme(readme, table)
            say(f"table put into {readme}")
    return status


if __name__ == "__main__":
    sys.exit(main())
