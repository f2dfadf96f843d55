"""Fuzz the raw-body decoding (adapters/sources/_layout.py): any Content-Type, any body.

LogicMonitor and Datto RMM read bodies their senders fill without escaping (layout markers,
JSON, the older layouts, form data) in the charset the Content-Type names; the generic source
stands for the JSON-only ones. As the hook: 415 for a type the source does not read, else the
body is read (see _sources.py). The first input byte picks the Content-Type's shape.
"""

from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    import _sources

    from adapters.sources.datto_rmm import DattoRmmSource
    from adapters.sources.generic import GenericSource
    from adapters.sources.logicmonitor import LogicMonitorSource
    from connector.errors import PayloadError, UnsupportedContentTypeError
    from connector.pipeline.intake import check_content_type, read_webhook

ADAPTERS = (LogicMonitorSource(), DattoRmmSource(), GenericSource())
#: Content-Type shapes; {} is filled with fuzzed text.
SHAPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "text/plain; charset={}",
    "application/x-www-form-urlencoded; charset={}",
    "application/json; charset={}",
    "{}",
    "application/vnd.{}+json",
)
CHARSETS = ("utf-8", "UTF8", "latin-1", "utf-16", "utf-32-be", "cp1252", "ascii", "idna", "rot13")


def test_one(data: bytes) -> None:
    """One Content-Type and body, sent to each source."""
    fdp = atheris.FuzzedDataProvider(data)
    shape = SHAPES[fdp.ConsumeIntInRange(0, len(SHAPES) - 1)]
    if fdp.ConsumeBool():
        filler = CHARSETS[fdp.ConsumeIntInRange(0, len(CHARSETS) - 1)]
    else:
        filler = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    # A header value reaches the app as latin-1 text without line breaks (WSGI, RFC 9110).
    content_type = shape.format(filler).encode("latin-1", "replace").decode("latin-1")
    content_type = content_type.replace("\r", "").replace("\n", "")
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    for adapter in ADAPTERS:
        try:
            check_content_type(adapter, content_type)
            parsed = read_webhook(adapter, body, content_type)
        except UnsupportedContentTypeError:
            continue
        except PayloadError as e:
            _sources.answerable(e.details)
            continue
        _sources.check_parsed(parsed)


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(
            _harness.SOURCES / "logicmonitor" / "raw",
            _harness.SOURCES / "datto_rmm" / "raw",
            _harness.BODIES,
            _harness.REGRESSIONS / "raw_bodies",
        ),
    )
