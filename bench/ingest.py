"""Benchmark: accepting one big Alertmanager webhook (parse, then ONE ingest transaction).

Run: .venv/bin/python bench/ingest.py [--alerts 500] [--database sqlite|postgresql]

- baseline: the same body decoded and normalized by the Alertmanager adapter alone (no
  database), i.e. the part of the webhook that does not depend on storage;
- webhook: POST /hooks/alertmanager through the app (authentication, parse, upsert of every
  alert, its event and its delivery, commit), answered 202.
The ratio webhook/baseline is the price of durability per webhook; ms per alert shows whether a
sender's timeout (Alertmanager's `webhook_config.timeout`) is anywhere near.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.sources.alertmanager import AlertmanagerSource  # noqa: E402
from connector import create_app  # noqa: E402
from connector.cli import prepare_database  # noqa: E402
from connector.secrets import new_key  # noqa: E402

TOKEN = "bench-hook-token-0123456789abcdef"  # noqa: S105 (a local bench's token)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def webhook(alerts: int, offset: int) -> bytes:
    """An Alertmanager v4 webhook with `alerts` distinct firing alerts."""
    entries = [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskFull",
                "instance": f"host{offset + i}:9100",
                "severity": "warning",
            },
            "annotations": {"summary": f"Disk full on host{offset + i}"},
            "startsAt": "2026-11-27T10:00:00Z",
            "fingerprint": f"{offset + i:016x}",
        }
        for i in range(alerts)
    ]
    body = {"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": entries}
    return json.dumps(body).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    url = POSTGRES if args.database == "postgresql" else f"sqlite:///{folder}/bench.sqlite"
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEYS": [new_key()],
            "HOOK_TOKEN": TOKEN,
            "WORKER_ENABLED": False,
            "INTEGRATION": {
                "zone_lookup_url": "http://127.0.0.1:9/",
                "allowed_zone_hosts": ["127.0.0.1"],
                "username": "bench@example.net",
                "secret": "bench-secret-0123456789",
                "integration_code": "BENCHCODE0123456",
                "default_company_id": 1,
            },
        }
    )
    prepare_database(app.extensions["connector"])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    source = AlertmanagerSource()
    # Fresh alerts each round (offsets far apart in time of run), so every round inserts.
    offset = int(time.time()) * 1000
    parse_s = post_s = 0.0
    for round_ in range(args.rounds):
        body = webhook(args.alerts, offset + round_ * args.alerts)
        start = time.perf_counter()
        source.parse(json.loads(body))
        parse_s += time.perf_counter() - start
        start = time.perf_counter()
        answer = client.post("/hooks/alertmanager", data=body, headers=headers)
        post_s += time.perf_counter() - start
        if answer.status_code != 202:
            raise SystemExit(f"webhook refused: {answer.status_code} {answer.get_data()!r}")
    app.extensions["connector"].dispose()
    per = args.rounds * args.alerts
    print(f"webhooks of {args.alerts} alerts, {args.rounds} rounds, database: {args.database}")
    print(f"baseline (decode + adapter parse): {parse_s / args.rounds * 1000:8.1f} ms per webhook")
    print(
        f"webhook  (202 after commit):       {post_s / args.rounds * 1000:8.1f} ms per webhook,"
        f" {post_s / per * 1000:.2f} ms per alert"
    )
    print(f"ratio webhook / baseline:          {post_s / parse_s:8.1f}")


if __name__ == "__main__":
    main()
