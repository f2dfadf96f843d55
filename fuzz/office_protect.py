"""Fuzz the Office Protect source: any body, read as POST /hooks/office_protect reads it."""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    import _sources

    from adapters.sources.office_protect import OfficeProtectSource

ADAPTER = OfficeProtectSource()


def test_one(data: bytes) -> None:
    """One body, with every content type the source takes."""
    _sources.read_as_the_hook(ADAPTER, data)


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(
            _harness.SOURCES / "office_protect", _harness.REGRESSIONS / "office_protect"
        ),
        json_bodies=True,
    )
