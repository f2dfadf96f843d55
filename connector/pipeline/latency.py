"""Alert → ticket latency: a histogram the worker observes each time it creates a ticket.

The histogram is the process's own (made at first use, so that it takes prometheus_client's
multiprocess mode when `connector run`/`serve` set it up before): under those commands the worker
is a process of its own and the web processes' /metrics add up its observations from the
multiprocess directory; without one (tests, an in-process worker) every app's registry of the
process exposes it.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Histogram

#: Histogram buckets in seconds, from a millisecond to ten minutes: a webhook's handling time
#: (milliseconds) and an alert's wait for its ticket (seconds, minutes in a storm or an outage).
BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


@cache
def alert_to_ticket() -> Histogram:
    """The process's histogram of seconds from an event's receipt to its ticket's creation."""
    return Histogram(
        "connector_alert_to_ticket_seconds",
        "Seconds from the connector's receipt of an alert's event to the creation of its"
        " Autotask ticket, observed by the worker when the create is committed.",
        buckets=BUCKETS,
        registry=None,
    )


def observe_alert_to_ticket(seconds: float) -> None:
    """Record one ticket created `seconds` after its event was received."""
    alert_to_ticket().observe(max(seconds, 0.0))
