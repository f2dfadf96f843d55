"""configured_source: an integration's source_options applied to a source adapter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.sources.alertmanager import AlertmanagerSource
from adapters.sources.logicmonitor import LogicMonitorSource
from connector.domain import ParsedWebhook, Severity
from connector.errors import ConfigError
from connector.integrations import sources
from connector.integrations.sources import configured_source


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    sources.clear_cache()
    yield
    sources.clear_cache()


def webhook(labels: dict[str, str]) -> dict[str, Any]:
    alert = {"status": "firing", "labels": labels, "startsAt": "2026-11-22T10:00:00Z"}
    return {"version": "4", "alerts": [alert]}


def test_without_options_the_registered_adapter_is_used() -> None:
    adapter = AlertmanagerSource()

    assert configured_source(adapter, {}) is adapter


def test_options_are_the_adapters_constructor_parameters() -> None:
    labels = {"alertname": "A", "priority": "P1", "severity": "info", "org": "acme"}
    options = {"severity_label": "priority", "tenant_labels": ["org"]}

    configured = configured_source(AlertmanagerSource(), options)

    assert type(configured) is AlertmanagerSource
    [alert] = configured.parse(webhook(labels))
    assert (alert.severity, alert.raw_severity, alert.tenant) == (Severity.CRITICAL, "P1", "acme")
    # The registered adapter keeps its defaults.
    [default] = AlertmanagerSource().parse(webhook(labels))
    assert (default.severity, default.tenant) == (Severity.INFO, "")


def test_one_label_name_given_as_text_is_one_label() -> None:
    configured = configured_source(AlertmanagerSource(), {"tenant_labels": "org"})

    [alert] = configured.parse(webhook({"alertname": "A", "org": "acme"}))
    assert alert.tenant == "acme"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"severity_label": "priority"}, {"severity_label": "priority"}, id="equal"),
        pytest.param(
            {"severity_label": "p", "tenant_labels": ["org"]},
            {"tenant_labels": ["org"], "severity_label": "p"},
            id="key-order",
        ),
        pytest.param({"tenant_labels": ["org"]}, {"tenant_labels": ("org",)}, id="list-or-tuple"),
    ],
)
def test_equal_options_share_one_cached_adapter(first: dict[str, Any], second: Any) -> None:
    adapter = AlertmanagerSource()

    assert configured_source(adapter, first) is configured_source(adapter, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"severity_label": "priority"}, {"severity_label": "level"}, id="value"),
        pytest.param({"tenant_labels": ["a", "b"]}, {"tenant_labels": ["b", "a"]}, id="order"),
    ],
)
def test_different_options_get_their_own_adapter(first: Any, second: Any) -> None:
    adapter = AlertmanagerSource()

    one, other = configured_source(adapter, first), configured_source(adapter, second)

    assert one is not other
    assert (one.severity_label, one.tenant_labels) != (other.severity_label, other.tenant_labels)


def test_the_cache_keeps_a_bounded_number_of_adapters() -> None:
    adapter = AlertmanagerSource()
    first = configured_source(adapter, {"severity_label": "label-0"})

    for n in range(1, sources.CACHE_SIZE + 1):
        configured_source(adapter, {"severity_label": f"label-{n}"})

    assert len(sources._cache) == sources.CACHE_SIZE
    assert configured_source(adapter, {"severity_label": "label-0"}) is not first


def test_options_that_cannot_be_a_cache_key_still_configure() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    class Taking:
        slug = "taking"
        display_name = "Taking"

        def __init__(self, thing: object = None) -> None:
            self.thing = thing

        def parse_items(self, payload: Any) -> ParsedWebhook:
            return ParsedWebhook()

    thing = Unhashable()
    configured = configured_source(Taking(), {"thing": thing})

    assert configured.thing is thing
    assert sources._cache == {}


@pytest.mark.parametrize(
    ("adapter", "options", "takes"),
    [
        pytest.param(
            AlertmanagerSource(),
            {"severity_lable": "priority"},
            "It takes: severity_label, tenant_labels, api_urls.",
            id="misspelt-option",
        ),
        pytest.param(
            LogicMonitorSource(), {"severity_label": "x"}, "It takes: no options.", id="no-options"
        ),
    ],
)
def test_options_the_adapter_does_not_take_are_a_config_error(
    adapter: Any, options: dict[str, Any], takes: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        configured_source(adapter, options)

    message = str(refused.value)
    given = next(iter(options))
    assert message.startswith(f"source_options for source {adapter.slug!r} ({given}) are not")
    assert type(adapter).__name__ in message
    assert message.endswith(takes)
    assert refused.value.details == {
        "source_options": {adapter.slug: [str(refused.value.__cause__)]}
    }


def test_a_value_the_adapter_refuses_is_a_config_error() -> None:
    class Strict:
        slug = "strict"
        display_name = "Strict"

        def __init__(self, level: int = 1) -> None:
            if level < 1:
                raise ValueError("level must be at least 1")

        def parse_items(self, payload: Any) -> ParsedWebhook:
            return ParsedWebhook()

    with pytest.raises(ConfigError, match="level must be at least 1. It takes: level."):
        configured_source(Strict(), {"level": 0})
