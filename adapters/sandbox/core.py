"""The sandbox itself, shared by its REST and SOAP faces: one simulated Autotask database and the
pipeline every call goes through (faults, authentication, limits, the call log)."""

from __future__ import annotations

import hmac
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from adapters.sandbox.errors import SandboxError
from adapters.sandbox.faults import FaultInjector
from adapters.sandbox.limits import ApiLimits, LimitSettings
from adapters.sandbox.permissions import SecurityLevel
from adapters.sandbox.seed import ApiUser, make_api_user
from adapters.sandbox.service import SandboxService
from adapters.sandbox.state import SandboxState
from adapters.sandbox.tenant import ApiTicketCategory, TenantRules
from adapters.sandbox.values import format_datetime
from adapters.sandbox.webhooks import CALLOUT_RETRY_SECONDS, TicketWebhooks

#: Where Autotask serves its REST and SOAP APIs below the host, as zone lookups and the WSDL
#: give them to clients.
REST_URL_PATH = "atservicesrest/"
SOAP_URL_PATH = "ATServices/1.6/atws.asmx"

#: The same paths as routes match them; real clients use both casings, so matching ignores case.
REST_PREFIX = f"/{REST_URL_PATH}"
SOAP_PATH = f"/{SOAP_URL_PATH.lower()}"

#: Autotask's answer when it says nothing about what failed (apigrate/autotask-restapi #19,
#: autotask-api.md §14); also every error body in opaque-errors mode.
GENERIC_ERROR = "Something went wrong"

#: How many calls /_sandbox/calls remembers.
CALL_LOG_SIZE = 200_000


@dataclass
class SandboxConfig:
    """How one sandbox instance behaves."""

    user: ApiUser = field(default_factory=make_api_user)
    limits: LimitSettings = field(default_factory=LimitSettings)
    #: Refuse unknown properties (and unknown REST query operators); real Autotask ignores them.
    strict_properties: bool = True
    #: Answer every error with Autotask's generic "Something went wrong" and nothing else, so no
    #: test can come to depend on a sandbox-only text (README "Opaque errors").
    opaque_errors: bool = False
    state_file: str | None = None
    zone_name: str = "Sandbox"
    #: The database's customer identifier reported by zone lookups.
    ci: int = 29683000
    #: Refuse new tickets for inactive companies (tenants differ; tenant.TenantRules).
    refuse_inactive_companies: bool = True
    #: The API-only ticket category new tickets get; None = none (tenant.ApiTicketCategory).
    api_ticket_category: ApiTicketCategory | None = None
    #: What the API user's security level does not allow: REST entity → actions (query, create,
    #: update); empty: everything (permissions.SecurityLevel).
    denied: dict[str, frozenset[str]] = field(default_factory=dict)
    #: The pause between attempts of a ticket webhook's callout (Autotask: 30 s; tests: less).
    webhook_retry_seconds: float = CALLOUT_RETRY_SECONDS


@dataclass
class Call:
    """One Autotask call as the sandbox saw it."""

    api: str
    method: str
    path: str
    endpoint: str
    operation: str
    started: float
    time: str
    status: int = 0
    concurrent: int = 0
    added_latency_ms: float = 0.0
    fault: str = ""
    duration_ms: float = 0.0
    #: The JSON body of an accepted REST write, kept for conformance tests.
    request_body: Any = None
    #: Whether the call is in the log already (a dropped call is logged before the drop).
    recorded: bool = False

    @property
    def ended(self) -> float:
        """When the call was answered, on the same clock as `started`."""
        return self.started + self.duration_ms / 1000

    def describe(self) -> dict[str, Any]:
        """Return the call as /_sandbox/calls lists it."""
        return {
            "time": self.time,
            "api": self.api,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "operation": self.operation,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            # When it started and ended, in seconds on the sandbox's monotonic clock: a bench
            # can tell how many calls overlapped (GET /_sandbox/concurrency sums it up).
            "start": round(self.started, 6),
            "end": round(self.ended, 6),
            "concurrent": self.concurrent,
            "added_latency_ms": round(self.added_latency_ms, 3),
            "fault": self.fault,
        }


class Sandbox:
    """One simulated Autotask database: records, limits, faults and the call log."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config.state_file)
        self.service = SandboxService(
            self.state,
            strict_properties=self.config.strict_properties,
            rules=TenantRules(
                refuse_inactive_companies=self.config.refuse_inactive_companies,
                api_ticket_category=self.config.api_ticket_category,
            ),
            security=SecurityLevel(dict(self.config.denied)),
        )
        self.limits = ApiLimits(self.config.limits, clock=clock)
        self.faults = FaultInjector()
        self.webhooks = TicketWebhooks(retry_seconds=self.config.webhook_retry_seconds)
        self.service.on_ticket_change = self.webhooks.ticket_changed
        #: Switchable at run time (POST /_sandbox/settings); reset() restores the configured value.
        self.opaque_errors = self.config.opaque_errors
        self.sleep = sleep
        self._calls: deque[Call] = deque(maxlen=CALL_LOG_SIZE)
        self._calls_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the seeded state: no tickets, calls, faults or usage; settings as configured.

        The API-only ticket category and the API user's permissions go back to the configured
        ones (runtime changes are lost).
        """
        self.state.reset()
        self.service.rules.api_ticket_category = self.config.api_ticket_category
        self.service.security = SecurityLevel(dict(self.config.denied))
        self.limits.reset()
        self.faults.clear()
        self.webhooks.reset()
        self.opaque_errors = self.config.opaque_errors
        self.service.strict_properties = self.config.strict_properties
        with self._calls_lock:
            self._calls.clear()

    def record(self, call: Call) -> None:
        """Append a finished call to the log (once)."""
        with self._calls_lock:
            if not call.recorded:
                call.recorded = True
                self._calls.append(call)

    def calls(self) -> list[Call]:
        """Every call logged since the last reset, oldest first."""
        with self._calls_lock:
            return list(self._calls)

    def tickets_with_notes(self) -> list[dict[str, Any]]:
        """Every ticket with a `notes` list, for tests and demos."""
        notes: dict[int, list[dict[str, Any]]] = {}
        for note in self.state.all("TicketNotes"):
            notes.setdefault(note["ticketID"], []).append(note)
        tickets = []
        for record in self.state.all("Tickets"):
            ticket = self.service.record("Tickets", record["id"]) or {}
            ticket["notes"] = notes.get(record["id"], [])
            tickets.append(ticket)
        return tickets

    # -- the pipeline every Autotask call goes through ------------------------------------------

    def authenticate(self, username: str | None, secret: str | None, code: str | None) -> None:
        """Check credentials the way Autotask answers them (500 unknown user/code, 401 secret).

        An unknown user is a 500, a known user with a wrong secret a 401, valid credentials with
        an unknown integration code a 500, and none of them says which: the body is "typically
        something like {"errors":["Something went wrong"]}" (apigrate/autotask-restapi #19,
        maintainer; autotask-api.md §2 and §14).
        """
        user = self.config.user
        if not username or username.lower() != user.username.lower():
            raise SandboxError(GENERIC_ERROR, status=500)
        # Compared in constant time, as everywhere (S1): the sandbox may be reachable too.
        if secret is None or not hmac.compare_digest(secret.encode(), user.secret.encode()):
            raise SandboxError(GENERIC_ERROR, status=401)
        if code is None or not hmac.compare_digest(code.encode(), user.integration_code.encode()):
            raise SandboxError(GENERIC_ERROR, status=500)

    def run(
        self,
        call: Call,
        handler: Callable[[], Response],
        error: Callable[[SandboxError], Response],
        *,
        credentials: Callable[[], tuple[str | None, str | None, str | None]] | None,
    ) -> Response:
        """Apply faults, authentication, the hourly threshold and thread limits, then handle.

        `credentials` is None for the calls Autotask serves without authentication (zone lookups),
        which are exempt from thread limiting and are not counted.
        """
        try:
            status = self.faults.injected_error()
            if status is not None:
                call.fault = "outage" if self.faults.plan.outage else "error"
                raise SandboxError(f"Sandbox fault injection: HTTP {status}.", status=status)
            delay = self.limits.settings.latency_seconds + self.faults.latency()
            if credentials is None:
                self._pause(call, delay)
                return self._finish(call, handler())
            username, secret, code = credentials()
            self.authenticate(username, secret, code)
            delay += self.limits.count_request()
            with self.limits.thread_slot(code or "", call.endpoint) as concurrent:
                call.concurrent = concurrent
                self._pause(call, delay)
                return self._finish(call, handler())
        except SandboxError as e:
            return self._finish(call, error(e))

    def _pause(self, call: Call, delay: float) -> None:
        if delay > 0:
            call.added_latency_ms = delay * 1000
            self.sleep(delay)

    def _finish(self, call: Call, response: Response) -> Response:
        call.status = 0 if call.fault == "drop" else response.status_code
        call.duration_ms = (time.monotonic() - call.started) * 1000
        self.record(call)
        return response

    def after_create(self, entity: str, call: Call) -> None:
        """Apply an ambiguous-create fault once the record is committed."""
        fault = self.faults.ambiguous(entity)
        if fault is None:
            return
        if fault.mode == "hang":
            call.fault = "hang"
            self.sleep(fault.hang_seconds)
            return
        sock = request.environ.get("werkzeug.socket")
        if sock is None:
            raise SandboxError("The drop fault needs the sandbox's own HTTP server.", status=502)
        call.fault = "drop"
        # Log the call before the client can see its connection end, so a test that catches the
        # ConnectionError finds the call in /_sandbox/calls.
        self._finish(call, Response(status=200))
        _drop(sock)


def new_call(api: str, endpoint: str, operation: str) -> Call:
    """Start a call record for the current request."""
    return Call(
        api=api,
        method=request.method,
        path=request.full_path.rstrip("?"),
        endpoint=endpoint,
        operation=operation,
        started=time.monotonic(),
        time=format_datetime(datetime.now(UTC)),
    )


def _drop(sock: socket.socket) -> None:
    """End the client's connection without an answer (FIN, then RST on close).

    The answer Flask still writes fails with a broken pipe: to the server, a client gone.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
