"""Bodies LogicMonitor and Datto RMM fill without escaping: every value arrives literally.

Both senders put each variable's value into the body as it is. The shipped bodies
(adapters/sources/bodies/) carry a layout marker, and the connector reads such a body by the
layout, never as JSON. These tests post the shipped bodies through the real app with each
variable replaced RAW by hostile values, and read the stored alert back.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.sources import datto_rmm, logicmonitor
from adapters.sources._layout import Layout, LayoutError
from connector.errors import PayloadError
from tests.adapters.sources.support import SOURCES_DIR, alert_record
from tests.conftest import API_TOKEN, HOOK_TOKEN

BODIES = Path(__file__).parents[3] / "adapters" / "sources" / "bodies"
LM_BODY = (BODIES / "logicmonitor.json").read_text()
DATTO_TRIGGERED = (BODIES / "datto_rmm.json").read_text()
DATTO_RESOLVED = (BODIES / "datto_rmm_resolved.json").read_text()
LM_BEFORE_LAYOUTS = (SOURCES_DIR / "logicmonitor/bodies/shipped_before_layouts.json").read_text()
DATTO_BEFORE_LAYOUTS = (SOURCES_DIR / "datto_rmm/bodies/shipped_before_layouts.json").read_text()

#: Values no JSON body survives when substituted raw (the last one survives, and lies).
HOSTILE = {
    "windows-path": "C:\\Program Files\\App\\",
    "double-quotes": 'the "Backup Agent" service said "no"',
    "newline": "first line\nsecond line",
    "crlf": "first line\r\nsecond line",
    "tab": "column one\tcolumn two",
    "braces": '{"x": 1}',
    "lone-backslash-at-the-end": "ends with a backslash \\",
    "non-ascii": "Überlauf ✓ 🚨",
    "json-escapes": "C:\\temp\\new",
    "commas-and-colons": 'a", b: c, "d',
}

LM_FIXED = {
    "ALERTSTATUS": "active",
    "LEVEL": "critical",
    "STARTEPOCH": "1795348800",
    "DATE": "2026-11-22 12:00:03 UTC",
    "autotask.accountid": "29683414",  # a company id (any other text drops the alert)
}


def substitute(template: str, values: dict[str, str], token: str) -> str:
    """The template with every token replaced RAW, as the sender does (no escaping)."""
    return re.sub(token, lambda m: values.get(m[1], m[0]), template)


def lm_body(value: str, template: str = LM_BODY, **fixed: str) -> bytes:
    """A LogicMonitor delivery: every free token is `value`, the validated ones are sane."""
    tokens = set(re.findall(r"##([^#]+)##", template))
    values = {name: value for name in tokens} | LM_FIXED | fixed
    return substitute(template, values, r"##([^#]+)##").encode()


def datto_body(value: str, template: str = DATTO_TRIGGERED) -> bytes:
    """A Datto RMM webhook: every variable is `value` but the priority."""
    tokens = set(re.findall(r"\[([a-z_]+)\]", template))
    values = {name: value for name in tokens} | {"alert_priority": "Critical"}
    return substitute(template, values, r"\[([a-z_]+)\]").encode()


def post_raw(
    client: FlaskClient, source: str, body: bytes, content_type: str = "application/json"
) -> Any:
    return client.post(
        f"/hooks/{source}",
        data=body,
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": content_type},
    )


def accepted_alert(client: FlaskClient, response: Any) -> dict[str, Any]:
    """The one alert a 202 took in, as the API shows it."""
    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["rejected"] == []
    [accepted] = answer["accepted"]
    assert accepted["disposition"] == "queued"
    return alert_record(client, accepted["alert_id"])


@dataclass(frozen=True)
class Sender:
    """How a sender's shipped body is filled, and what the stored alert must then say."""

    source: str
    body: Callable[[str], bytes]
    expected: Callable[[str], dict[str, Any]]

    def stored(self, record: dict[str, Any]) -> dict[str, Any]:
        return {key: _pick(record, key) for key in self.expected("x")}


def _pick(record: dict[str, Any], key: str) -> Any:
    return record["properties"].get(key.removeprefix("property:")) if ":" in key else record[key]


def lm_expected(value: str) -> dict[str, Any]:
    return {
        "fingerprint": f"{value}@1795348800",
        "title": f"{value} {value} on {value}",  # "<datasource> <datapoint> on <host>"
        "message": value,
        "host": value,
        "tenant": value,
        "monitor": value,
        "property:instance": value,
        "property:value": value,
        "property:threshold": value,
        "property:logicmonitor.group": value,
        "property:logicmonitor.url": value,
        "property:autotask.accountid": "29683414",
    }


def datto_expected(value: str) -> dict[str, Any]:
    return {
        "fingerprint": value,
        "title": value.strip().splitlines()[0],  # the message's first line
        "message": value,
        "host": value,
        "tenant": value,
        "monitor": value,
        "property:datto_rmm.site_uid": value,
        "property:datto_rmm.device_uid": value,
        "property:datto_rmm.platform": value,
    }


SENDERS = {
    "logicmonitor": Sender("logicmonitor", lm_body, lm_expected),
    "datto_rmm": Sender("datto_rmm", datto_body, datto_expected),
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("sender", list(SENDERS.values()), ids=list(SENDERS))
def test_the_shipped_body_filled_raw_with_hostile_values_keeps_them_literally(
    client: FlaskClient, sender: Sender, value: str
) -> None:
    record = accepted_alert(client, post_raw(client, sender.source, sender.body(value)))

    assert sender.stored(record) == sender.expected(value)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8"])
@pytest.mark.parametrize("sender", list(SENDERS.values()), ids=list(SENDERS))
def test_raw_bodies_may_come_as_text(
    client: FlaskClient, sender: Sender, content_type: str
) -> None:
    value = 'C:\\temp\\new "q"\r\n\t{"x": 1} Überlauf ✓ 🚨 \\'

    record = accepted_alert(
        client, post_raw(client, sender.source, sender.body(value), content_type)
    )

    assert sender.stored(record) == sender.expected(value)


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("sender", list(SENDERS.values()), ids=list(SENDERS))
def test_fire_then_clear_with_hostile_values_is_one_alert_with_two_events(
    client: FlaskClient, sender: Sender, value: str
) -> None:
    if sender.source == "logicmonitor":
        fire = lm_body(value)
        clear = lm_body(value, ALERTSTATUS="clear", DATE="2026-11-22 12:30:00 UTC")
    else:
        fire, clear = datto_body(value), datto_body(value, DATTO_RESOLVED)

    fired = post_raw(client, sender.source, fire).get_json()["accepted"][0]
    cleared = post_raw(client, sender.source, clear).get_json()["accepted"][0]

    assert (fired["disposition"], cleared["disposition"]) == ("queued", "queued")
    assert fired["alert_id"] == cleared["alert_id"]
    record = alert_record(client, fired["alert_id"])
    assert [event["status"] for event in record["events"]] == ["active", "cleared"]
    assert record["fingerprint"] == sender.expected(value)["fingerprint"]


# -- captured-style raw deliveries -----------------------------------------------------------------


def raw_fixture(source: str, name: str) -> bytes:
    return (SOURCES_DIR / source / "raw" / name).read_bytes()


LM_MESSAGE = (
    'Host: srv02.fabrikam.local\r\nVolume "C:\\" is 97.1% used.\r\n'
    "Largest folder: C:\\temp\\new\tbuild\\ (12 GB)"
)
DATTO_MESSAGE = (
    'Event 7031 (Service Control Manager): The "Backup Agent" service terminated unexpectedly.'
    '\nImage path: "C:\\Program Files\\Backup\\agent.exe"'
    "\nLog: C:\\Windows\\System32\\winevt\\Logs\\System.evtx"
)


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        (
            "logicmonitor",
            "windows_volume_active.txt",
            {"message": LM_MESSAGE, "monitor": "WinLogicalDisk-C:\\", "instance": "C:\\"},
        ),
        (
            "logicmonitor",
            "shipped_before_layouts_active.txt",
            {"message": LM_MESSAGE, "monitor": "WinLogicalDisk-C:\\", "instance": "C:\\"},
        ),
        (
            "datto_rmm",
            "event_log_triggered.txt",
            {"message": DATTO_MESSAGE, "tenant": 'Northwind "Main" Office'},
        ),
        (
            "datto_rmm",
            "shipped_before_layouts_triggered.txt",
            {"message": DATTO_MESSAGE, "tenant": 'Northwind "Main" Office'},
        ),
    ],
    ids=["lm-layout", "lm-before-layouts", "datto-layout", "datto-before-layouts"],
)
def test_captured_style_raw_deliveries_are_read_literally(
    client: FlaskClient, source: str, name: str, expected: dict[str, str]
) -> None:
    body = raw_fixture(source, name)
    with pytest.raises(ValueError):
        json.loads(body)  # what the connector used to refuse with a 400

    record = accepted_alert(client, post_raw(client, source, body))

    shown = record | {"instance": record["properties"].get("instance")}
    assert {key: shown[key] for key in expected} == expected


def test_datto_trigger_then_resolve_raw_is_one_alert(client: FlaskClient) -> None:
    fired = post_raw(client, "datto_rmm", raw_fixture("datto_rmm", "event_log_triggered.txt"))
    cleared = post_raw(client, "datto_rmm", raw_fixture("datto_rmm", "event_log_resolved.txt"))

    assert (
        fired.get_json()["accepted"][0]["alert_id"] == cleared.get_json()["accepted"][0]["alert_id"]
    )


# -- bodies shipped before layouts -----------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("logicmonitor", lm_body('say "hi"', LM_BEFORE_LAYOUTS)),
        ("datto_rmm", datto_body('say "hi"', DATTO_BEFORE_LAYOUTS)),
    ],
    ids=["logicmonitor", "datto_rmm"],
)
def test_a_body_shipped_before_layouts_with_a_quote_is_read_now(
    client: FlaskClient, source: str, body: bytes
) -> None:
    record = accepted_alert(client, post_raw(client, source, body))

    assert record["message"] == 'say "hi"'
    assert record["host"] == 'say "hi"'


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_body_shipped_before_layouts_that_is_valid_json_is_json_and_misreads_escapes(
    client: FlaskClient,
) -> None:
    """Documented: valid JSON is read as JSON, so re-paste the shipped body (with its marker)."""
    record = accepted_alert(
        client, post_raw(client, "logicmonitor", lm_body("C:\\temp\\new", LM_BEFORE_LAYOUTS))
    )

    assert record["message"] == "C:\temp\new"  # a tab and a newline: JSON's reading
    assert record["message"] != "C:\\temp\\new"


# -- what cannot be read is refused, never guessed, and kept --------------------------------------


def rejected_webhooks(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/rejected-webhooks", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    return list(response.get_json()["rejected_webhooks"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("source", "body", "reason"),
    [
        pytest.param(
            "logicmonitor",
            lm_body("x").replace(b'"value": "x",', b'"value": "1", "threshold": "x",'),
            "cannot be read for certain",
            id="value-holding-the-next-separator",
        ),
        pytest.param(
            "logicmonitor",
            re.sub(rb'\s*"threshold": "x",', b"", lm_body("x")),
            "no member 'threshold' after member 'value'",
            id="member-removed",
        ),
        pytest.param(
            "logicmonitor",
            lm_body("x").replace(b"logicmonitor-raw-1", b"logicmonitor-raw-9"),
            "'logicmonitor-raw-9'",
            id="unknown-layout",
        ),
        pytest.param(
            "datto_rmm",
            datto_body("x").rstrip().removesuffix(b"}"),
            "does not end as",
            id="cut-off",
        ),
        pytest.param(
            "datto_rmm",
            datto_body("x").replace(b'"site_name": "x"', b'"site_name": "A", "hostname": "B"'),
            "cannot be read for certain",
            id="site-name-holding-the-hostname-separator",
        ),
    ],
)
def test_a_body_the_layout_cannot_read_is_a_400_kept_whole(
    client: FlaskClient, source: str, body: bytes, reason: str
) -> None:
    response = post_raw(client, source, body)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert reason in response.get_json()["error"]["message"]
    [row] = rejected_webhooks(client)
    kept = client.get(
        f"/api/v1/rejected-webhooks/{row['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).get_json()
    assert kept["body"].encode() == body


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("source", "content_type"),
    [
        ("logicmonitor", "application/xml"),
        ("logicmonitor", "multipart/form-data; boundary=x"),
        ("datto_rmm", "application/x-www-form-urlencoded"),
    ],
)
def test_other_content_types_are_415_naming_those_taken(
    client: FlaskClient, source: str, content_type: str
) -> None:
    response = post_raw(client, source, b"{}", content_type)

    assert response.status_code == 415
    message = response.get_json()["error"]["message"]
    assert "application/json" in message and "text/plain" in message


def test_a_hostile_megabyte_is_refused_quickly(connector_app: Flask) -> None:
    """A linear scan: no backtracking blow-up, whatever a sender makes of the separators."""
    head = b'{"layout": "logicmonitor-raw-1", "alert_id": "'
    limit = connector_app.config["MAX_CONTENT_LENGTH"]
    fragments = [b'"\t\t,\t"status"\t:\t', b'"' + b" " * 1000, b'", "x": "', b"\\" * 1000]
    for fragment in fragments:
        body = head + fragment * ((limit - len(head) - 10) // len(fragment))
        started = time.monotonic()
        response = post_raw(connector_app.test_client(), "logicmonitor", body + b'"}')
        assert response.status_code == 400
        assert time.monotonic() - started < 2, fragment


# -- form data -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_logicmonitor_form_data_arrives_literally(client: FlaskClient, value: str) -> None:
    from urllib.parse import urlencode

    keys = (BODIES / "logicmonitor_form.txt").read_text().split()
    names = [line.split("=", 1)[0] for line in keys]
    fields = {name: value for name in names} | {
        "status": "active",
        "level": "critical",
        "start_epoch": "1795348800",
        "date": "2026-11-22 12:00:03 UTC",
        "properties.autotask.accountid": "29683414",
    }

    response = post_raw(
        client, "logicmonitor", urlencode(fields).encode(), "application/x-www-form-urlencoded"
    )

    assert SENDERS["logicmonitor"].stored(accepted_alert(client, response)) == lm_expected(value)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_form_key_sent_twice_is_refused(client: FlaskClient) -> None:
    response = post_raw(
        client,
        "logicmonitor",
        b"alert_id=a&status=active&alert_id=b",
        "application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert list(response.get_json()["error"]["details"]) == ["alert_id"]


# -- replay: a body an older connector refused, read by the new one --------------------------------


def test_a_body_refused_by_an_older_reader_is_replayed_after_the_upgrade(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector before layouts decoded every body as JSON: a quote was a lost alert.

    Simulated here by that reader; the kept body is replayed once the real one is back.
    """
    monkeypatch.setattr(
        logicmonitor.LogicMonitorSource,
        "decode_body",
        lambda self, raw, content_type: logicmonitor.read_raw_body(
            raw, None, [], logicmonitor.Layout("strict JSON only", [("nothing",)], marker="-")
        ),
    )
    body = lm_body('the "Backup Agent" service stopped')
    refused = post_raw(client, "logicmonitor", body)
    assert refused.status_code == 400
    [row] = rejected_webhooks(client)

    monkeypatch.undo()  # the upgrade
    replayed = client.post(
        f"/api/v1/rejected-webhooks/{row['id']}/replay",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )

    assert replayed.status_code == 202, replayed.get_data(as_text=True)
    [accepted] = replayed.get_json()["accepted"]
    record = alert_record(client, accepted["alert_id"])
    assert record["message"] == 'the "Backup Agent" service stopped'
    assert rejected_webhooks(client)[0]["replayed_at"] is not None


# -- the reader, for any text ----------------------------------------------------------------------


FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MEMBERS = [
    *logicmonitor.LAYOUT.members,
    *logicmonitor.SHIPPED_BEFORE_LAYOUTS.members,
    *datto_rmm.LAYOUT.members,
]
#: Text leaning towards what a separator is made of (member names too), and anything else.
values = st.lists(
    st.sampled_from(['"', ",", ":", " ", "\t", "\n", "\r", "\\", "{", "}", '", "', '": "'])
    | st.sampled_from(sorted({name for path in MEMBERS for name in path}))
    | st.sampled_from(sorted({f'", "{name}": "' for path in MEMBERS for name in path}))
    | st.text(max_size=3),
    max_size=12,
).map("".join)
LAYOUTS = {
    "logicmonitor": logicmonitor.LAYOUT,
    "logicmonitor-before-layouts": logicmonitor.SHIPPED_BEFORE_LAYOUTS,
    "datto_rmm": datto_rmm.LAYOUT,
    "datto_rmm-before-layouts": datto_rmm.SHIPPED_BEFORE_LAYOUTS,
}
SHIPPED = {
    "logicmonitor": LM_BODY,
    "logicmonitor-before-layouts": LM_BEFORE_LAYOUTS,
    "datto_rmm": DATTO_TRIGGERED,
    "datto_rmm-before-layouts": DATTO_BEFORE_LAYOUTS,
}


def layout_body(layout: Layout, template: str, chosen: list[str]) -> str:
    """The template's member values replaced raw by `chosen`, in the layout's order."""
    found = iter(chosen)
    value_of = re.compile(r'("(?P<name>[^"]+)"\s*:\s*")(?P<value>[^"]*)(")')
    skipped_marker = False

    def put(match: re.Match[str]) -> str:
        nonlocal skipped_marker
        if match["name"] == "layout" and not skipped_marker:
            skipped_marker = True
            return match[0]
        return match[1] + next(found) + match[4]

    return value_of.sub(put, template)


def as_body(layout: Layout, chosen: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for path, value in zip(layout.members, chosen, strict=True):
        target = body
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = value
    return body


def holds_a_separator(layout: Layout, chosen: list[str]) -> bool:
    """Whether a value holds the text that opens its own member or the next one.

    That text is `"`, `,` and the member's quoted name and `:` (with `}` or `{` where the
    nested object ends or starts), up to its value's opening quote; inside a value it may use
    the value's own opening or closing quote.
    """
    separators = layout._separators
    for index, value in enumerate(chosen):
        around = '"' + value + '"'
        own = [separators[index - 1]] if index > 0 else []
        following = [separators[index]] if index < len(separators) else []
        if any(separator.search(around) for separator in own + following):
            return True
    return False


@pytest.mark.parametrize("name", list(LAYOUTS))
@FAST
@given(data=st.data())
@example(data=None)
def test_any_values_filled_in_raw_are_read_back_exactly_or_refused_as_ambiguous(
    name: str, data: st.DataObject | None
) -> None:
    layout = LAYOUTS[name]
    count = len(layout.members)
    chosen = (
        ["C:\\", '"', "\\", '", "', "}", "{", ", ", ":", "", "\r\n"] * 3
        if data is None
        else data.draw(st.lists(values, min_size=count, max_size=count))
    )[:count]
    text = layout_body(layout, SHIPPED[name], chosen)

    try:
        read = layout.read(text)
    except LayoutError as e:
        assert "cannot be read for certain" in str(e), (str(e), chosen)
        assert holds_a_separator(layout, chosen), chosen
        return
    assert read == as_body(layout, chosen)


@pytest.mark.parametrize("sender", ["logicmonitor", "datto_rmm"])
@FAST
@given(value=values)
def test_the_adapter_reads_any_single_value_exactly(sender: str, value: str) -> None:
    """Every member the same text: refused only when it holds a separator, else exact."""
    source = (
        logicmonitor.LogicMonitorSource()
        if sender == "logicmonitor"
        else datto_rmm.DattoRmmSource()
    )
    layout = LAYOUTS[sender]
    chosen = [value] * len(layout.members)
    raw = layout_body(layout, SHIPPED[sender], chosen).encode("utf-8", "surrogatepass")

    try:
        payload = source.decode_body(raw, "application/json")
    except PayloadError as e:
        assert holds_a_separator(layout, chosen) or "not valid utf-8" in str(e), str(e)
        return
    assert payload == as_body(layout, chosen)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_alert_of_a_json_batch_is_kept_without_a_layout_marker(
    client: FlaskClient,
) -> None:
    """Kept alone, the alert replays as the JSON it was, not literally (escapes and all)."""
    good = json.loads(lm_body("srv01")) | {"message": 'said "no"'}
    bad = good | {"alert_id": "LMD2", "status": "exploded"}

    answer = post_raw(client, "logicmonitor", json.dumps({"alerts": [good, bad]}).encode())

    [rejected] = answer.get_json()["rejected"]
    kept = client.get(
        f"/api/v1/rejected-webhooks/{rejected['rejected_webhook_id']}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    ).get_json()
    assert json.loads(kept["body"]) == {k: v for k, v in bad.items() if k != "layout"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_content_type_is_checked_before_the_body_is_read(
    client: FlaskClient, connector_app: Flask
) -> None:
    limit = connector_app.config["MAX_CONTENT_LENGTH"]

    response = post_raw(client, "logicmonitor", b" " * (limit + 1), "application/xml")

    assert response.status_code == 415


# -- variables left unfilled -----------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "template", [DATTO_TRIGGERED, DATTO_RESOLVED], ids=["triggered", "resolved"]
)
def test_datto_rmm_test_webhook_of_the_shipped_body_is_202_with_no_alert(
    client: FlaskClient, template: str
) -> None:
    """The monitor form's test sends the body with every variable literal."""
    response = post_raw(client, "datto_rmm", template.encode())

    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert (answer["accepted"], answer["rejected"]) == ([], [])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tokens_left_literal_or_empty_are_empty_values(client: FlaskClient) -> None:
    """LogicMonitor leaves a token it cannot fill in place; an empty value is just empty."""
    values = {"ALERTID": "LMD9", "HOST": "srv09", "MESSAGE": ""} | LM_FIXED
    body = substitute(LM_BODY, values, r"##([^#]+)##").encode()  # the others stay ##TOKEN##

    record = accepted_alert(client, post_raw(client, "logicmonitor", body))

    assert (record["host"], record["message"], record["tenant"]) == ("srv09", "", "")
    assert record["title"] == "srv09"
    assert "instance" not in record["properties"]
    assert record["properties"]["autotask.accountid"] == "29683414"


@pytest.mark.parametrize(
    ("charset", "body"), [("utf-8\x00", b"{}"), ("idna", b"xn--zz"), ("punycode", b"abc-9999")]
)
def test_a_charset_that_names_no_codec_or_fails_in_its_own_way_is_a_400(
    charset: str, body: bytes
) -> None:
    # Found by fuzzing (fuzz/regressions/raw_bodies): a NUL in the charset raised ValueError;
    # found reviewing that fix: a codec's own UnicodeError (idna, punycode). Both were 500s.
    with pytest.raises(PayloadError):
        logicmonitor.LogicMonitorSource().decode_body(body, f"text/plain; charset={charset}")
