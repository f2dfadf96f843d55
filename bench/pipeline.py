"""Benchmark: alert lifecycles through the whole pipeline vs. the same Autotask calls made directly.

Run: .venv/bin/python bench/pipeline.py [--alerts 200] [--database sqlite|postgresql] [--workers 1]

Both measurements run in this process's run, against the same in-process sandbox:
- baseline: the REST calls one lifecycle needs (zone lookup once; create, read-back, status,
  note, note, complete), made directly with requests from as many threads as workers;
- pipeline: webhooks (active, acknowledged, cleared) posted to a real `connector serve` process,
  delivered by real `connector worker` processes, timed until the outbox is drained.
The ratio pipeline/baseline is the connector's overhead (durable ingest, planning, commits).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.sandbox import LimitSettings, Sandbox, SandboxConfig, SandboxServer  # noqa: E402
from adapters.sandbox.seed import make_api_user  # noqa: E402
from connector.secrets import new_key  # noqa: E402
from tests.conftest import API_TOKEN, DEFAULT_POSTGRES_URL, HOOK_TOKEN  # noqa: E402
from tests.e2e.harness import Connector, alert  # noqa: E402


def baseline(server: SandboxServer, alerts: int, threads: int) -> float:
    """Seconds for the direct REST calls of `alerts` lifecycles."""
    user = server.sandbox.config.user
    base = f"{server.url}atservicesrest/v1.0/"
    headers = {
        "UserName": user.username,
        "Secret": user.secret,
        "ApiIntegrationCode": user.integration_code,
    }
    session = requests.Session()
    session.headers.update(headers)
    session.get(f"{base}zoneInformation", params={"user": user.username}, timeout=10)

    def lifecycle(index: int) -> None:
        body = {"companyID": 29683414, "title": f"B {index}", "status": 1, "priority": 2}
        ticket = session.post(f"{base}Tickets", json=body, timeout=10).json()["itemId"]
        session.get(f"{base}Tickets/{ticket}", timeout=10)
        session.patch(f"{base}Tickets", json={"id": ticket, "status": 8}, timeout=10)
        note = {"description": "ack", "noteType": 1, "publish": 1, "title": "ack"}
        session.post(f"{base}Tickets/{ticket}/Notes", json=note, timeout=10)
        session.post(f"{base}Tickets/{ticket}/Notes", json=note, timeout=10)
        session.patch(f"{base}Tickets", json={"id": ticket, "status": 5}, timeout=10)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lifecycle, range(alerts)))
    return time.perf_counter() - start


def pipeline(server: SandboxServer, alerts: int, workers: int, database: str, tmp: Path) -> float:
    """Seconds from the first webhook until every delivery is done."""
    user = server.sandbox.config.user
    url = f"sqlite:///{tmp}/bench.sqlite" if database == "sqlite" else DEFAULT_POSTGRES_URL
    settings = {
        "DATABASE_URL": url,
        "SECRET_KEYS": [new_key()],
        "HOOK_TOKEN": HOOK_TOKEN,
        "API_TOKEN": API_TOKEN,
        "WORKER_ENABLED": False,
        "WORKER_POLL_SECONDS": 0.05,
        "INTEGRATION": {
            "zone_lookup_url": f"{server.url}atservicesrest/",
            "username": user.username,
            "secret": user.secret,
            "integration_code": user.integration_code,
            "allowed_zone_hosts": ["127.0.0.1"],
            "default_company_id": 29683414,
        },
    }
    connector = Connector(settings, tmp)
    try:
        connector.start_web()
        for _ in range(workers):
            connector.start_worker()
        start = time.perf_counter()
        for status in ("active", "acknowledged", "cleared"):
            connector.post_all(alert(i, status) for i in range(alerts))
        posted = time.perf_counter() - start
        connector.drain(timeout=1800)
        total = time.perf_counter() - start
    finally:
        connector.stop()
    print(f"  webhooks: {3 * alerts} posted in {posted:.2f} s ({3 * alerts / posted:.0f}/s)")
    return total


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    config = SandboxConfig(user=make_api_user(), limits=LimitSettings(latency_tiers=[]))
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(Sandbox(config)) as server:
        direct = baseline(server, args.alerts, args.workers)
        server.sandbox.reset()
        through = pipeline(server, args.alerts, args.workers, args.database, Path(tmp))
    per_alert = through / args.alerts * 1000
    print(f"alerts: {args.alerts}, workers: {args.workers}, database: {args.database}")
    print(f"baseline (direct REST calls): {direct:.2f} s ({args.alerts / direct:.1f} lifecycles/s)")
    print(
        f"pipeline (webhook → ticket):  {through:.2f} s ({args.alerts / through:.1f} lifecycles/s,"
    )
    print(f"                              {per_alert:.1f} ms per lifecycle)")
    print(f"ratio pipeline / baseline:    {through / direct:.2f}")


if __name__ == "__main__":
    main()
