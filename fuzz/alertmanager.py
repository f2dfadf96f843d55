"""Fuzz the Alertmanager source: a webhook body (see _sources.py) and an API v2 alert list."""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    import _sources

    from adapters.sources.alertmanager import AlertmanagerSource
    from connector.errors import PayloadError

ADAPTER = AlertmanagerSource()


def test_one(data: bytes) -> None:
    """One body, as a webhook and as the alert list the reconcile job asks for (GET /alerts)."""
    _sources.read_as_the_hook(ADAPTER, data)
    try:
        ADAPTER.firing_in(data)
    except PayloadError:
        pass


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(_harness.SOURCES / "alertmanager", _harness.REGRESSIONS / "alertmanager"),
        json_bodies=True,
    )
