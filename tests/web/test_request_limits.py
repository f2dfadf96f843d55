"""Webhook size and count limits (S3 of ../shared/reference/reliability-security.md, §4.2): an
oversized body is refused unread, refusing 100 of them costs the serving process no memory,
and a webhook with more alerts than MAX_ALERTS is a 400 at every source that batches."""

from __future__ import annotations

import copy
import io
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from adapters import SOURCES
from adapters.sources._common import MAX_ALERTS
from tests.conftest import FIXTURES, GENERIC_ALERT, HOOK_TOKEN
from tests.web.test_hooks import assert_refused

ROOT = Path(__file__).parent.parent.parent
HEADERS = {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"}

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class CountingStream(io.BytesIO):
    """A request body that counts the bytes anyone read from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.taken += len(data)
        return data


@sqlite_only
def test_a_body_over_the_limit_is_413_without_a_byte_read(
    client: FlaskClient, connector_app: Flask
) -> None:
    size = connector_app.config["MAX_CONTENT_LENGTH"] + 1
    body = CountingStream(b"{" + b" " * (size - 1))

    response = client.post(
        "/hooks/generic", input_stream=body, content_length=size, headers=HEADERS
    )

    assert_refused(response, 413, connector_app)
    assert body.taken == 0


# -- memory of the serving process ------------------------------------------------------------

#: The connector served by werkzeug in its own interpreter; it prints its port when ready.
SERVE = """
import json, sys
from werkzeug.serving import make_server
from connector import create_app
from connector.cli import prepare_database
app = create_app(json.loads(sys.argv[1]))
prepare_database(app.extensions["connector"])
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


def peak_rss_kib(pid: int) -> int:
    """The peak resident set size of process `pid` so far (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


@pytest.fixture
def served(connector_settings: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """The connector serving in a child process: its base URL and process id."""
    with subprocess.Popen(
        [sys.executable, "-c", SERVE, json.dumps(connector_settings)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:  # the block's end closes the pipe and waits for the child
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 60)
            assert ready, "the connector did not start within 60 s"
            port = int(child.stdout.readline())
            yield f"http://127.0.0.1:{port}", child.pid
        finally:
            child.terminate()
            child.wait(timeout=10)


@sqlite_only
@pytest.mark.timeout(240)
def test_refusing_100_bodies_over_the_limit_adds_less_than_20_mb_of_peak_rss(
    served: tuple[str, int], connector_settings: dict[str, Any]
) -> None:
    url, pid = served
    oversized = b"{" + b" " * int(connector_settings.get("MAX_CONTENT_LENGTH", 1_048_576))
    deadline = time.monotonic() + 180
    with requests.Session() as session:
        warm = session.post(f"{url}/hooks/generic", json=GENERIC_ALERT, headers=HEADERS, timeout=30)
        assert warm.status_code == 202, warm.text
        before = peak_rss_kib(pid)
        statuses = []
        for _ in range(100):
            assert time.monotonic() < deadline, f"only {len(statuses)} sent in 180 s"
            answer = session.post(
                f"{url}/hooks/generic", data=oversized, headers=HEADERS, timeout=30
            )
            statuses.append(answer.status_code)
    growth = peak_rss_kib(pid) - before

    assert statuses == [413] * 100
    assert growth < 20 * 1024, f"peak RSS grew by {growth} KiB"
    print(f"peak RSS growth over 100 oversized bodies: {growth} KiB")  # the audit's figure


# -- more alerts than the cap -----------------------------------------------------------------


def too_many(source: str) -> dict[str, Any]:
    """A body of `source` carrying MAX_ALERTS + 1 alerts (copies of a fixture's first)."""
    if source == "alertmanager":
        body = json.loads((FIXTURES / "sources" / "alertmanager" / "firing.json").read_text())
        body["alerts"] = [copy.deepcopy(body["alerts"][0]) for _ in range(MAX_ALERTS + 1)]
        return dict(body)
    single = {
        "generic": "single_alert.json",
        "logicmonitor": "active.json",
        "datto_rmm": "triggered.json",
        "office_protect": "sign_in_unauthorized_country.json",
    }[source]
    item = json.loads((FIXTURES / "sources" / source / single).read_text())
    key = "events" if source == "office_protect" else "alerts"
    return {key: [item] * (MAX_ALERTS + 1)}


@sqlite_only
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_more_alerts_than_the_cap_are_400_at_every_source(
    client: FlaskClient, connector_app: Flask, source: str
) -> None:
    response = client.post(f"/hooks/{source}", json=too_many(source), headers=HEADERS)

    error = assert_refused(response, 400, connector_app)
    assert (
        f"too many alerts in one webhook: {MAX_ALERTS + 1} (at most {MAX_ALERTS})"
        in (error["message"])
    )
