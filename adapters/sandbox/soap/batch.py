"""SOAP create and update batches, applied all or nothing as ATWS applies them."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from adapters.sandbox.errors import SandboxError
from adapters.sandbox.service import SandboxService
from adapters.sandbox.soap.envelope import REST_ENTITY
from adapters.sandbox.soap.records import read_entity
from adapters.sandbox.state import SandboxState

#: "Any batch call must be 200 or less entities per call". Reference: autotask-api.md §10
#: (OFFICIAL Batching_API_Calls.htm; python-atws AUTOTASK_API_ENTITY_SEND_LIMIT = 200).
MAX_BATCH = 200

#: SOAP entities that create and update accept; Accounts are seeded and query-only here.
WRITABLE = {"Ticket", "TicketNote"}


class _Overlay(SandboxState):
    """The sandbox's records behind a scratch layer: writes land in the layer only.

    A batch is first applied to an overlay so that one failing entity leaves the real records
    untouched ("one failing entity fails the whole batch", autotask-api.md §10), with exactly
    the validation the real write will run.
    """

    def __init__(self, base: SandboxState) -> None:
        super().__init__()
        self.base = base
        self.lock = base.lock
        self._layer: dict[tuple[str, int], dict[str, Any]] = {}
        self._scratch_id = 0

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        if (entity, record_id) in self._layer:
            return copy.deepcopy(self._layer[(entity, record_id)])
        return self.base.get(entity, record_id)

    def all(self, entity: str) -> list[dict[str, Any]]:
        records = {r["id"]: r for r in self.base.all(entity)}
        records.update({k[1]: copy.deepcopy(v) for k, v in self._layer.items() if k[0] == entity})
        return [records[k] for k in sorted(records)]

    def insert(self, entity: str, record: dict[str, Any]) -> int:
        self._scratch_id -= 1  # negative ids never collide with real ones
        self._layer[(entity, self._scratch_id)] = copy.deepcopy(record) | {"id": self._scratch_id}
        return self._scratch_id

    def replace(self, entity: str, record: dict[str, Any]) -> None:
        self._layer[(entity, record["id"])] = copy.deepcopy(record)


def _record_error(number: int, error: SandboxError) -> SandboxError:
    """Prefix each message with the failing entity's 1-based position in the batch.

    Real batch errors read "Error updating entity for record number [n]" (python-atws
    atws/wrapper.py parses the number). Reference: autotask-api.md §10.
    """
    prefix = f"Error updating entity for record number [{number}]."
    return SandboxError(*(f"{prefix} {m}" for m in error.messages), status=error.status)


def _apply_batch(
    service: SandboxService,
    operation: str,
    batch: list[tuple[str, dict[str, Any]]],
) -> list[int]:
    ids = []
    for number, (soap, values) in enumerate(batch, start=1):
        try:
            if operation == "create":
                ids.append(service.create(REST_ENTITY[soap], values))
            else:
                # SOAP update replaces: "all entity fields are updated unless they are ReadOnly
                # … if no value is provided … those fields are cleared" (OFFICIAL
                # UpdateCall.htm). Reference: autotask-api.md §10.
                ids.append(service.update(REST_ENTITY[soap], values, replace=True))
        except SandboxError as e:
            raise _record_error(number, e) from e
    return ids


def read_batch(
    operation: str, elements: list[etree._Element], *, strict: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The entities of a create or update as (SOAP entity, REST-named values), in order."""
    if len(elements) > MAX_BATCH:
        raise SandboxError(
            f"Any batch call must be {MAX_BATCH} or less entities per call;"
            f" this {operation} carries {len(elements)}."
        )
    batch = []
    for number, element in enumerate(elements, start=1):
        try:
            entity, values = read_entity(element, strict)
            if entity not in WRITABLE:
                raise SandboxError(f"The sandbox does not {operation} {entity} entities.")
        except SandboxError as e:
            raise _record_error(number, e) from e
        batch.append((entity, values))
    return batch


def apply_all_or_nothing(
    service: SandboxService, operation: str, batch: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Apply the batch and return the records it wrote; if one entity fails, none is written."""
    with service.state.lock:
        if len(batch) > 1:
            scratch = SandboxService(
                _Overlay(service.state),
                strict_properties=service.strict_properties,
                clock=service.clock,
                rules=service.rules,
                security=service.security,
            )
            _apply_batch(scratch, operation, batch)
        ids = _apply_batch(service, operation, batch)
        return [
            service.record(REST_ENTITY[entity], new_id) or {"id": new_id}
            for (entity, _), new_id in zip(batch, ids, strict=True)
        ]
