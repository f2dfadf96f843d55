"""What both flavours read alike from Autotask's zone and usage answers: the database, the usage."""

from __future__ import annotations

import pytest

from adapters.targets.autotask.answers import api_usage, database_id_of
from connector.domain import ApiUsage
from connector.errors import TargetError


@pytest.mark.parametrize(
    ("ci", "database_id"),
    [
        (30049, "30049"),  # REST "ci" is an int32
        ("513558", "513558"),  # SOAP <CI> is text
        (" 513558 ", "513558"),
        (0, None),  # what getZoneInfo carries next to a failed lookup
        (-1, None),
        (None, None),
        ("", None),
        ("Pro", None),
        (True, None),
    ],
)
def test_the_ci_names_the_database_only_when_it_is_a_positive_number(
    ci: object, database_id: str | None
) -> None:
    assert database_id_of(ci) == database_id


def test_usage_figures_are_read_as_numbers() -> None:
    assert api_usage(10000, "60", 42) == ApiUsage(count=42, threshold=10000, timeframe_minutes=60)


@pytest.mark.parametrize("missing", ["threshold", "timeframe", "count"])
def test_usage_without_a_figure_is_an_unusable_answer_not_a_crash(missing: str) -> None:
    figures: dict[str, object] = {"threshold": 10000, "timeframe": 60, "count": 1}
    figures[missing] = None
    with pytest.raises(TargetError, match="without usable figures") as caught:
        api_usage(**figures)
    assert caught.value.retryable
