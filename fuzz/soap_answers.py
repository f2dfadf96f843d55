"""Fuzz the reading of Autotask SOAP answers (adapters/targets/autotask/soap/answers.py).

Allowed: what AutotaskSoapClient._call turns into a TargetError: Unreadable (not XML, a DOCTYPE,
no SOAP Body), Refused (a ReturnCode other than 1), ZoneRefused, and ValueError (a number that
is not one) for an answer that is not the shape the WSDL documents.
"""

from __future__ import annotations

from functools import partial

import _harness
import atheris

with atheris.instrument_imports(include=_harness.INSTRUMENTED):
    from adapters.targets.autotask.soap.answers import (
        Refused,
        ZoneRefused,
        answered_ticket,
        atws_answer,
        body_content,
        entity_infos,
        field_infos,
        read_fault,
        usage_figures,
        zone_answer,
    )
    from adapters.targets.autotask.soap.atws import Unreadable

READERS = (atws_answer, entity_infos, field_infos, partial(zone_answer, username="api@example"))
ALLOWED = (Unreadable, Refused, ZoneRefused, ValueError)


def test_one(data: bytes) -> None:
    """One HTTP answer's body, read by every reader the client has."""
    try:
        content = body_content(data)
    except Unreadable:
        return
    read_fault(content)
    for read in READERS:
        try:
            value, _ = read(content)
        except ALLOWED:
            continue
        if read is atws_answer:
            answered_ticket(value.entities)
            usage_figures(value.info_messages)


if __name__ == "__main__":
    _harness.main(
        test_one,
        _harness.seeds(_harness.SEEDS / "soap", _harness.REGRESSIONS / "soap_answers"),
        dictionary=_harness.XML_DICT,
    )
