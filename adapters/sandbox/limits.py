"""Autotask's API limits: the hourly request threshold, usage-based latency, and thread limiting.

- 10,000 external requests per rolling hour per database, shared by every integration; past it
  requests are refused (official SOAP/REST threshold pages; the "suspended" behaviour is
  third-party, hence configurable). Reference: ../shared/reference/autotask-api.md §8.
- Usage-based latency: from 50 % of the threshold 0.5 s, from 75 % 1 s are added per call
  (third-party figures, configurable).
- Thread limiting: 3 concurrent requests per (API tracking identifier, object endpoint), answered
  with 429 "API thread threshold of 3 threads has been exceeded"; ZoneInformation is exempt.
- A base latency (0 by default): what the network and Autotask's own work take per call, so a
  storm can be measured against a realistic Autotask (about 250 ms per call); sandbox only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from adapters.sandbox.errors import SandboxError


def thread_threshold_message(limit: int) -> str:
    """Autotask's refusal past the thread limit, in its own words.

    "API thread threshold of 3 threads has been exceeded", as quoted from real answers
    (n8n-nodes-autotask PR #107 and issue #4; autotask-api.md §14), status 429 over REST.
    """
    return f"API thread threshold of {limit} threads has been exceeded"


@dataclass
class LimitSettings:
    """The configurable numbers; defaults are Autotask's."""

    hourly_threshold: int = 10_000
    timeframe_minutes: int = 60
    #: [(fraction of the threshold used, added seconds per call)], checked from the highest.
    latency_tiers: list[tuple[float, float]] = field(
        default_factory=lambda: [(0.5, 0.5), (0.75, 1.0)]
    )
    thread_limit: int = 3
    #: Seconds every call takes before it is answered (zone lookups too), while holding its
    #: thread: concurrent calls sleep side by side, as real ones wait on Autotask side by side.
    latency_seconds: float = 0.0


class ApiLimits:
    """Counts requests in the rolling window and concurrent requests per endpoint."""

    def __init__(
        self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self._in_flight: dict[tuple[str, str], int] = {}

    def reset(self) -> None:
        """Forget the window; requests still in flight keep their threads until they finish."""
        with self._lock:
            self._window.clear()

    def _expire(self, now: float) -> None:
        horizon = now - self.settings.timeframe_minutes * 60
        while self._window and self._window[0] <= horizon:
            self._window.popleft()

    def usage(self) -> int:
        """Requests counted in the current rolling timeframe."""
        with self._lock:
            self._expire(self.clock())
            return len(self._window)

    def count_request(self) -> float:
        """Count one request; return the latency to add, or raise once over the threshold."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            threshold = self.settings.hourly_threshold
            if len(self._window) >= threshold:
                # Invented wording: no real answer past the hourly threshold was found
                # (autotask-api.md §8). It names the "request threshold", which the connector's
                # RATE_LIMIT_MARKERS look for.
                raise SandboxError(
                    f"The request threshold of {threshold} requests per"
                    f" {self.settings.timeframe_minutes} minutes has been exceeded for this"
                    " database; API access is blocked until usage falls below it.",
                    status=429,
                )
            self._window.append(now)
            used = len(self._window) / threshold
        delay = 0.0
        for fraction, seconds in sorted(self.settings.latency_tiers):
            if used >= fraction:
                delay = seconds
        return delay

    @contextmanager
    def thread_slot(self, tracking_id: str, endpoint: str) -> Iterator[int]:
        """Hold one of the endpoint's threads; yield how many are in flight including this one."""
        key = (tracking_id, endpoint.lower())
        with self._lock:
            current = self._in_flight.get(key, 0)
            if current >= self.settings.thread_limit:
                raise SandboxError(thread_threshold_message(self.settings.thread_limit), status=429)
            self._in_flight[key] = current + 1
        try:
            yield current + 1
        finally:
            with self._lock:
                self._in_flight[key] -= 1
                if not self._in_flight[key]:
                    del self._in_flight[key]
