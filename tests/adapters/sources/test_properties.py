"""Every vendor source: the adapter contract, and no body at all makes /hooks/<source> answer 500.

Property tests post random JSON, random bytes and fixtures mutated (fields deleted, retyped,
replaced by random JSON, unknown fields added): the answer is 202, or a 400 whose `details` name
only fields that were mutated.
"""

from __future__ import annotations

import copy
import inspect
import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters import SOURCES, load, load_sources
from connector.services import RawBodySource, SourceAdapter
from tests.adapters.sources.support import (
    alert_record,
    fixture,
    fixture_names,
    post,
    post_raw,
    precise_400,
)

#: Every registered source but the generic one (tests/test_generic_source.py has its own), so
#: that a newly registered source gets these tests without being listed here.
VENDORS = sorted(set(SOURCES) - {"generic"})
#: The fixtures that parse (a mutation of them shows what the mutation did).
VALID_FIXTURES = {
    source: [n for n in fixture_names(source) if n != "test_webhook.json"] for source in VENDORS
}


# -- the contract ----------------------------------------------------------------------------


def test_every_vendor_is_registered() -> None:
    assert set(VENDORS) <= set(SOURCES)


@pytest.mark.parametrize("slug", sorted(SOURCES))
def test_source_follows_the_contract(slug: str) -> None:
    cls = load(SOURCES[slug])
    adapter = load_sources()[slug]

    assert adapter.slug == slug
    assert adapter.display_name
    assert isinstance(adapter, SourceAdapter)
    for method in (cls.parse_items, cls.parse):
        assert inspect.getdoc(method)
        assert list(inspect.signature(method).parameters) == ["self", "payload"]
    if isinstance(adapter, RawBodySource):
        assert "application/json" in adapter.content_types
        assert inspect.getdoc(cls.decode_body)


@pytest.mark.parametrize("slug", VENDORS)
def test_vendor_module_documents_the_body_to_configure(slug: str) -> None:
    doc = inspect.getdoc(inspect.getmodule(load(SOURCES[slug]))) or ""

    assert f"/hooks/{slug}" in doc
    assert "{" in doc  # the body itself


@pytest.mark.parametrize("slug", VENDORS)
@pytest.mark.parametrize("body", [None, [], "x", 1, True], ids=repr)
def test_a_body_that_is_not_an_object_is_a_precise_400(slug: str, body: Any) -> None:
    from connector.errors import PayloadError

    with pytest.raises(PayloadError, match="JSON object"):
        load_sources()[slug].parse(body)


OVERLONG: dict[str, dict[str, Any]] = {
    "logicmonitor": {
        "alert_id": "L" * 200,
        "status": "active",
        "start": "s" * 100,
        "host": "h" * 400,
        "tenant": "t" * 400,
        "datasource": "d" * 400,
        "title": "T" * 5000,
    },
    "datto_rmm": {
        "status": "triggered",
        "alert_uid": "u" * 200,
        "hostname": "h" * 400,
        "site_name": "s" * 400,
        "monitor": "m" * 400,
        "message": "M" * 5000,
    },
    "office_protect": {
        "event_id": "e" * 200,
        "event_type": "t" * 255,
        "tenant": "n" * 255,
        "user": "u" * 5000,
    },
    "alertmanager": {
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "a" * 400,
                    "instance": "i" * 400,
                    "tenant": "t" * 400,
                    "x" * 1000: "y" * 5000,
                },
                "annotations": {"summary": "s" * 5000},
                "startsAt": "2026-11-22T10:00:00Z",
                "fingerprint": "f" * 400,
            }
        ]
    },
}


@pytest.mark.parametrize("slug", VENDORS)
def test_overlong_values_fit_the_database(client: FlaskClient, slug: str) -> None:
    """On PostgreSQL too: String(255) columns get at most 255 characters."""
    assert slug in OVERLONG, f"give OVERLONG a {slug} body with over-long values"
    response = post(client, slug, OVERLONG[slug])

    assert response.status_code == 202, response.get_data(as_text=True)
    [accepted] = response.get_json()["accepted"]
    record = alert_record(client, accepted["alert_id"])
    for field in ("fingerprint", "host", "tenant", "monitor"):
        assert len(record[field]) <= 255, field


# -- property tests ----------------------------------------------------------------------------


#: Property tests are about parsing: SQLite only, so they stay fast.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


FAST = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that includes what databases refuse (NUL, unpaired surrogates) and template syntax.
text = st.text(
    st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff", "#", "[", "]"]), max_size=20
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
timestamps = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(),
    st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23)),
)
words = st.sampled_from(
    [
        "active",
        "ack",
        "clear",
        "update",
        "test",
        "triggered",
        "resolved",
        "firing",
        "ignored",
        "Critical",
        "warn",
        "page",
        "Information",
        "4",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "1795341000000",
        "##HOST##",
        "[site_name]",
        "",
    ]
)
replacements = json_values | timestamps | words | st.text(max_size=300)


def assert_202_or_precise_400(response: Any, mutated: list[str] | None = None) -> None:
    """202 with valid dispositions, or a 400 naming only fields under the mutated paths.

    A 202 may refuse some alerts of a batch: those name only mutated fields too.
    """
    if response.status_code == 202:
        answer = response.get_json()
        for entry in answer["accepted"]:
            disposition = entry["disposition"]
            assert disposition in ("queued", "duplicate") or disposition.startswith(
                ("dropped: ", "stale: ")
            )
        for entry in answer["rejected"]:
            assert entry["disposition"] == "rejected"
            assert isinstance(entry["rejected_webhook_id"], int)
            assert_names_only(entry["details"], mutated)
        return
    error = precise_400(response)
    assert_names_only(error.get("details"), mutated)


def assert_names_only(details: Any, mutated: list[str] | None) -> None:
    """`details` name only fields under the mutated paths (anything, when none are given)."""
    if mutated is None:
        return
    assert details, details
    for key in details:
        assert any(
            path == "*" or key == path or key.startswith(f"{path}.") or path.startswith(f"{key}.")
            for path in mutated
        ), (key, mutated)


@sqlite_only
@pytest.mark.parametrize("slug", VENDORS)
@FAST
@given(value=json_values)
@example(value={})
@example(value={"alerts": []})
@example(value={"alerts": [None]})
@example(value={"events": [{}]})
def test_random_json_is_never_a_500(client: FlaskClient, slug: str, value: Any) -> None:
    assert_202_or_precise_400(post_raw(client, slug, json.dumps(value).encode()))


@sqlite_only
@pytest.mark.parametrize("slug", VENDORS)
@FAST
@given(body=st.binary(max_size=200))
@example(body=b"NaN")
@example(body=b'{"alert_id": "a", "status": "active", "start_epoch": NaN}')
@example(body=b'{"alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": Infinity}]}')
@example(body=b'{"status": "triggered", "alert_uid": "u", "timestamp": -Infinity}')
def test_random_bytes_are_never_a_500(client: FlaskClient, slug: str, body: bytes) -> None:
    assert_202_or_precise_400(post_raw(client, slug, body))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (dict keys and list indexes), the value's own first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def retyped(value: Any) -> Any:
    """The same content in another JSON type."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() else [value]
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return 0


mutation_kinds = st.sampled_from(["delete", "replace", "retype", "add"])


@sqlite_only
@pytest.mark.parametrize("slug", VENDORS)
@FAST
@given(data=st.data())
def test_mutated_fixture_is_202_or_a_400_naming_the_mutation(
    client: FlaskClient, slug: str, data: st.DataObject
) -> None:
    body = copy.deepcopy(fixture(slug, data.draw(st.sampled_from(VALID_FIXTURES[slug]))))
    mutated: list[str] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        choices = paths(body)
        if not choices:
            break
        path = data.draw(st.sampled_from(choices))
        parent = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            current = parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        kind = data.draw(mutation_kinds)
        if kind == "delete":
            del parent[path[-1]]
            if path in (("events",), ("alerts",)) and slug != "alertmanager":
                # Without its batch key the body is read as one alert: any field may be missing.
                mutated.append("*")
                continue
        elif kind == "replace":
            parent[path[-1]] = data.draw(replacements)
        elif kind == "retype":
            parent[path[-1]] = retyped(current)
        elif isinstance(current, dict):
            # An unknown field is ignored; it names nothing if refused for its own content.
            current[f"x-{data.draw(text)}"] = data.draw(json_values)
        else:
            continue
        mutated.append(".".join(str(step) for step in path))

    response = post_raw(client, slug, json.dumps(body).encode())

    assert_202_or_precise_400(response, mutated)
