"""Fuzz the LogicMonitor source: any body, read as POST /hooks/logicmonitor reads it."""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    import _sources

    from adapters.sources.logicmonitor import LogicMonitorSource

ADAPTER = LogicMonitorSource()


def test_one(data: bytes) -> None:
    """One body, with every content type the source takes."""
    _sources.read_as_the_hook(ADAPTER, data)


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(
            _harness.SOURCES / "logicmonitor",
            _harness.BODIES,
            _harness.REGRESSIONS / "logicmonitor",
        ),
        json_bodies=True,
    )
