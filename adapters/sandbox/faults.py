"""Fault injection for tests and demos (sandbox only, set with POST /_sandbox/faults)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate


@dataclass
class AmbiguousCreate:
    """Commit the new record, then hang past the client's timeout or drop the connection."""

    mode: str = "hang"
    rate: float = 1.0
    hang_seconds: float = 30.0
    entities: list[str] = field(default_factory=lambda: ["Tickets"])
    count: int | None = None


@dataclass
class FaultPlan:
    """What goes wrong, for every Autotask request until the plan is changed or reset."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    error_count: int | None = None
    outage: bool = False
    ambiguous_create: AmbiguousCreate | None = None
    seed: int | None = None

    def describe(self) -> dict[str, Any]:
        """Return the plan as the JSON GET /_sandbox/faults answers."""
        described: dict[str, Any] = FaultPlanSchema().dump(self)
        return described


class AmbiguousCreateSchema(Schema):
    mode = fields.String(load_default="hang", validate=validate.OneOf(["hang", "drop"]))
    rate = fields.Float(load_default=1.0, validate=validate.Range(0, 1))
    hang_seconds = fields.Float(load_default=30.0, validate=validate.Range(0, 3600))
    entities = fields.List(
        fields.String(validate=validate.OneOf(["Tickets", "TicketNotes"])),
        load_default=lambda: ["Tickets"],
    )
    count = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AmbiguousCreate:
        return AmbiguousCreate(**data)


class FaultPlanSchema(Schema):
    latency_ms = fields.Float(load_default=0.0, validate=validate.Range(0, 600_000))
    error_rate = fields.Float(load_default=0.0, validate=validate.Range(0, 1))
    error_status = fields.Integer(load_default=500, strict=True, validate=validate.Range(400, 599))
    error_count = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    outage = fields.Boolean(load_default=False)
    ambiguous_create = fields.Nested(AmbiguousCreateSchema, load_default=None, allow_none=True)
    seed = fields.Integer(load_default=None, allow_none=True, strict=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> FaultPlan:
        return FaultPlan(**data)


def load_plan(body: Any) -> FaultPlan:
    """Validate a POST /_sandbox/faults body; raise ValidationError naming the bad fields."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["Expected a JSON object."]})
    plan: FaultPlan = FaultPlanSchema().load(body)
    return plan


class FaultInjector:
    """Applies the current FaultPlan; decisions are drawn from a seedable random source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.plan = FaultPlan()
        self._random = random.Random()  # noqa: S311 -- fault sampling, not security

    def set(self, plan: FaultPlan) -> None:
        """Replace the plan."""
        with self._lock:
            self.plan = plan
            self._random = random.Random(plan.seed)  # noqa: S311

    def clear(self) -> None:
        """Remove every fault."""
        self.set(FaultPlan())

    def latency(self) -> float:
        """Seconds to add before answering."""
        return self.plan.latency_ms / 1000

    def injected_error(self) -> int | None:
        """The HTTP status to fail this request with, or None."""
        with self._lock:
            plan = self.plan
            if plan.outage:
                return 503
            if plan.error_rate and self._random.random() < plan.error_rate:
                if plan.error_count is not None:
                    plan.error_count -= 1
                    if plan.error_count <= 0:
                        plan.error_rate = 0.0
                        plan.error_count = None
                return plan.error_status
            return None

    def ambiguous(self, entity: str) -> AmbiguousCreate | None:
        """The ambiguous-create fault to apply after creating a record of `entity`, or None."""
        with self._lock:
            fault = self.plan.ambiguous_create
            if fault is None or entity not in fault.entities:
                return None
            if self._random.random() >= fault.rate:
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.plan.ambiguous_create = None
            return fault
