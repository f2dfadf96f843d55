"""End-to-end runs against both faces of the sandbox's errors: its words, and opaque ones.

Real tenants often answer a refusal with no more than `{"errors":["Something went wrong"]}`
(../shared/reference/autotask-api.md §14), so the connector must never depend on the sandbox's
own error texts. Each end-to-end test's database × API combinations alternate between the two:
with both APIs, sqlite-rest and postgresql-soap see Autotask's words and sqlite-soap and
postgresql-rest see opaque errors; a REST-only test sees words on SQLite and opaque errors on
PostgreSQL. So every test passes in both modes, and each API in both, without running twice.
A test that checks Autotask's words themselves is marked `autotask_words` and always gets them.
`CONNECTOR_SANDBOX_OPAQUE_ERRORS=true` (or `false`) in the environment runs every other
combination that way instead: `CONNECTOR_SANDBOX_OPAQUE_ERRORS=true .venv/bin/pytest tests/e2e`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox import Sandbox, SandboxServer
from tests.e2e.harness import Connector


def opaque_errors_for(request: pytest.FixtureRequest) -> bool:
    """Whether this test's combination runs against opaque errors (see the module docstring)."""
    if request.node.get_closest_marker("autotask_words") is not None:
        return False
    forced = os.environ.get("CONNECTOR_SANDBOX_OPAQUE_ERRORS", "").strip().lower()
    if forced in ("true", "false"):
        return forced == "true"
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    on_postgresql = params.get("database_url") == "postgresql"
    over_soap = params.get("api_flavour") == "soap"
    return on_postgresql != over_soap


@pytest.fixture
def sandbox(sandbox: Sandbox, request: pytest.FixtureRequest) -> Sandbox:
    """The shared sandbox, answering errors opaquely or in words for this combination."""
    sandbox.opaque_errors = opaque_errors_for(request)
    request.node.user_properties.append(
        ("sandbox_errors", "opaque" if sandbox.opaque_errors else "words")
    )
    return sandbox


@pytest.fixture
def connector(
    connector_settings: dict[str, Any], sandbox_server: SandboxServer, tmp_path: Path
) -> Iterator[Connector]:
    """A running connector: its web process and one worker, stopped after the test."""
    service = Connector(connector_settings, tmp_path)
    try:
        service.start_web()
        service.start_worker()
        yield service
    finally:
        service.stop()


# The admin pages' browser tests: a headless chromium per test process, and their screenshots.
from tests.e2e.admin import admin_service, page  # noqa: E402, F401
from tests.e2e.browser import browser, screens  # noqa: E402, F401
