"""Render limits: how much one render may produce and take, and the budget that counts it.

The sandbox bounds what template code may touch, not how long it runs (reliability-security.md
§4.7), so every render gets a budget: output size, loop iterations, the size of every
intermediate value, the characters allocated in total, and the time it computes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from jinja2.utils import Namespace


@dataclass(frozen=True)
class RenderLimits:
    """How much one render may produce and take (reliability-security.md §4.7, S6)."""

    max_output_chars: int = 1024 * 1024
    #: Any one intermediate value: a string's length, a container's total size.
    max_value_chars: int = 1024 * 1024
    #: Characters produced by all operations together, so work stays bounded too.
    max_total_chars: int = 64 * 1024 * 1024
    max_iterations: int = 100_000
    #: Seconds of the rendering thread's own CPU time: a render waiting for a busy machine's
    #: CPU is not stopped for it, one that computes too long is.
    max_seconds: float = 2.0
    #: Integers wider than this many bits are refused (`10 ** 10 ** 10` would never finish).
    max_int_bits: int = 4096


class RenderLimitExceeded(Exception):
    """A render passed one of its RenderLimits."""


@dataclass
class RenderBudget:
    """What one render has used so far of its RenderLimits."""

    limits: RenderLimits
    deadline: float
    iterations: int = 0
    produced: int = 0
    #: id → (container, printed size) of the containers measured during this render.
    sizes: dict[int, tuple[object, int]] = field(default_factory=dict)

    def tick(self) -> None:
        """Stop the render once it has run out of time."""
        if time.thread_time() > self.deadline:
            raise RenderLimitExceeded(
                f"rendering took longer than {self.limits.max_seconds:g} s and was stopped"
            )

    def iteration(self) -> None:
        """Count one loop iteration; stop the render past the limit."""
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise RenderLimitExceeded(
                f"loops ran more than {self.limits.max_iterations} times in total and were stopped"
            )
        if self.iterations % 256 == 0:
            self.tick()

    def check_size(self, chars: int) -> None:
        """Refuse a value of `chars` characters if it is larger than one value may be."""
        if chars > self.limits.max_value_chars:
            raise RenderLimitExceeded(
                f"a value of {chars} characters is larger than the"
                f" {self.limits.max_value_chars} a template may build"
            )

    def charge(self, chars: int) -> None:
        """Count `chars` characters produced; refuse a value or a total past its limit."""
        self.check_size(chars)
        self.produced += chars
        if self.produced > self.limits.max_total_chars:
            raise RenderLimitExceeded(
                f"the template built more than {self.limits.max_total_chars} characters in total"
            )


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("connector_render_budget", default=None)


def current_budget() -> RenderBudget:
    """The budget of the render under way."""
    # Constant folding runs filters while compiling, outside any render: bounded by size only.
    return _BUDGET.get() or RenderBudget(RenderLimits(), deadline=math.inf)


def _children(item: object) -> list[object] | None:
    """The parts of a container that its printed form shows; None for anything else."""
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, list | tuple | set | frozenset):
        return list(item)
    if isinstance(item, Namespace):
        # str(namespace) prints its attributes, like a dict's.
        return [object.__getattribute__(item, "_Namespace__attrs")]
    return None


def measure(value: object, budget: RenderBudget) -> int:
    """The printed size of `value`, roughly: string lengths plus one per item (capped).

    Shared parts count each time they appear, as they print; each container is walked once per
    render (sandboxed templates cannot change a list or dict), so nesting stays cheap to check.
    """
    cap = budget.limits.max_value_chars + 1
    sizes = budget.sizes
    pending: set[int] = set()
    local: dict[int, int] = {}

    def size(item: object) -> int:
        if isinstance(item, str | bytes):
            return len(item) + 1
        key = id(item)
        if key in sizes:
            return sizes[key][1]
        return local.get(key, cap if key in pending or _children(item) is not None else 1)

    stack: list[tuple[object, bool]] = [(value, False)]
    while stack:
        item, expanded = stack.pop()
        key = id(item)
        children = _children(item)
        if children is None or key in sizes or key in local:
            continue
        if not expanded:
            if key in pending:
                continue  # a cycle (through a namespace): counted as too large
            pending.add(key)
            stack.append((item, True))
            stack.extend((child, False) for child in children if _children(child) is not None)
            continue
        pending.discard(key)
        total = min(cap, 1 + sum(min(cap, size(child)) for child in children))
        if isinstance(item, Namespace):
            local[key] = total  # its attributes can be reassigned: not kept for the render
        else:
            sizes[key] = (item, total)  # the item is kept so that its id is not reused
    return size(value)


def check_value(value: object) -> object:
    """`value`, counted against the budget; refused if too large or too wide an integer."""
    budget = current_budget()
    if isinstance(value, str):
        budget.charge(len(value))
    elif isinstance(value, dict | list | tuple | set | frozenset | Namespace):
        budget.charge(measure(value, budget))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > budget.limits.max_int_bits:
            raise RenderLimitExceeded(f"an integer wider than {budget.limits.max_int_bits} bits")
    return value


def as_text(value: object) -> str:
    """`value` as text, refusing first anything whose text would be too large."""
    if isinstance(value, str):
        return value
    budget = current_budget()
    budget.charge(measure(value, budget))
    return str(value)


@contextmanager
def metered(limits: RenderLimits) -> Iterator[RenderBudget]:
    """A fresh budget for one render, current until the block ends."""
    budget = RenderBudget(limits, time.thread_time() + limits.max_seconds)
    reset = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(reset)
