"""Fuzz the Datto RMM source: any body, read as POST /hooks/datto_rmm reads it (see _sources.py)."""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    import _sources

    from adapters.sources.datto_rmm import DattoRmmSource

ADAPTER = DattoRmmSource()


def test_one(data: bytes) -> None:
    """One body, with every content type the source takes."""
    _sources.read_as_the_hook(ADAPTER, data)


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(
            _harness.SOURCES / "datto_rmm", _harness.BODIES, _harness.REGRESSIONS / "datto_rmm"
        ),
        json_bodies=True,
    )
