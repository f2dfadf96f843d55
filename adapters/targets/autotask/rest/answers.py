"""REST answers: the response shapes we accept, and the one table of failures → how taken.

Read by status and structure, never by the sandbox's wording. Reference:
../shared/reference/autotask-api.md §1, §4, §7, §8 and §14.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import requests

from adapters.targets.autotask.answers import database_id_of
from adapters.targets.autotask.errors import is_validation_refusal
from adapters.targets.autotask.profile import RATE_LIMIT_MARKERS
from connector.domain import ZoneAnswer

# -- the one table of Autotask's answers → our errors ------------------------------------------
#
# Read by status and structure, never by the sandbox's wording. Reference: autotask-api.md §7
# (status codes; Autotask's own `{"errors": [...]}` body), §2 (a wrong secret is 401; an unknown
# user or integration code is a 500, "typically" with no more than "Something went wrong"), §8
# and §14 (thresholds; real validation wording).


class Refusal(StrEnum):
    """How a non-2xx answer is taken."""

    #: Autotask refused this request (validation, reference, permission): never retried.
    REJECTED = "rejected"
    #: Autotask refused in its own shape without saying why: the credentials are checked, then
    #: the request is tried GENERIC_REFUSAL_ATTEMPTS times in all.
    GENERIC = "generic"
    #: Slow down: 429, or the thread or hourly threshold on any status.
    RATE_LIMITED = "rate_limited"
    #: The credentials were refused.
    AUTH = "auth"
    #: No answer from Autotask itself (a gateway, a non-Autotask body, 503): retried.
    UNAVAILABLE = "unavailable"


def classify_failure(status: int, messages: Sequence[str], *, autotask_body: bool) -> Refusal:
    """Map a non-2xx answer to how it is taken.

    `autotask_body` says whether the body is Autotask's error shape (`{"errors": [...]}`), the
    proof that Autotask itself ran the request and refused it.
    """
    text = " ".join(messages).lower()
    if 300 <= status < 400:
        # Redirects are never followed: an outbound call goes only where the zone lookup
        # allowed (reliability-security.md §4.5, ASVS 15.3.2).
        return Refusal.REJECTED
    if status == 429 or any(marker in text for marker in RATE_LIMIT_MARKERS):
        return Refusal.RATE_LIMITED
    if status in (401, 403):
        return Refusal.AUTH
    if status in (408, 502, 503, 504):
        return Refusal.UNAVAILABLE  # a gateway or the server gave up: Autotask never said no
    if status == 500:
        if not autotask_body:
            return Refusal.UNAVAILABLE  # an HTML error page, an empty body: not Autotask's answer
        return Refusal.REJECTED if is_validation_refusal(messages) else Refusal.GENERIC
    if 400 <= status < 500:
        return Refusal.REJECTED  # 400, 404 unknown route, 405 (§7): the request is wrong
    return Refusal.UNAVAILABLE


# -- readers: the response shapes we accept (autotask-api.md §1, §4, §8) ------------------------


def object_of(payload: Any) -> tuple[dict[str, Any], int | None]:
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    return payload, None


def as_is(response: requests.Response) -> tuple[requests.Response, int | None]:
    """A sent request's answer, read by the worker; records counted when it is a query page."""
    try:
        payload = response.json()
    except ValueError:
        return response, None
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        return response, len(payload["items"])
    return response, None


def zone_of(payload: Any) -> tuple[ZoneAnswer, int | None]:
    """ZoneInformationResultModel: {"zoneName", "url", "webUrl", "ci"}; `ci` names the
    database (autotask-api.md §1)."""
    zone = object_of(payload)[0]
    url = zone["url"]
    if not isinstance(url, str) or not url:
        raise TypeError("zoneInformation has no url")
    return ZoneAnswer(url, database_id_of(zone.get("ci"))), None


def item_id(payload: Any) -> tuple[int, int | None]:
    """OperationResultModel: {"itemId": id}."""
    item_id = object_of(payload)[0]["itemId"]
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise TypeError(f"itemId {item_id!r} is not an integer")
    return item_id, None


def single_item(payload: Any) -> tuple[dict[str, Any] | None, int | None]:
    """ItemQueryResultModel: {"item": {...}} or {"item": null} for a missing id."""
    item = object_of(payload)[0]["item"]
    if item is None:
        return None, 0
    if not isinstance(item, dict):
        raise TypeError("item is not an object")
    return item, 1


def page_of(payload: Any) -> tuple[tuple[list[dict[str, Any]], str | None], int | None]:
    """QueryActionResult: {"items": [...], "pageDetails": {..., "nextPageUrl"}}."""
    body = object_of(payload)[0]
    items = body["items"]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TypeError("items is not a list of objects")
    details = body.get("pageDetails") or {}
    if not isinstance(details, dict):
        raise TypeError("pageDetails is not an object")
    next_url = details.get("nextPageUrl")
    if next_url is not None and not isinstance(next_url, str):
        raise TypeError("nextPageUrl is not a string")
    return (items, next_url or None), len(items)


def info_of(payload: Any) -> tuple[dict[str, Any], int | None]:
    """EntityInformationResultModel: {"info": {"name", "canCreate", …, "userAccessForCreate"}}."""
    info = object_of(payload)[0]["info"]
    if not isinstance(info, dict):
        raise TypeError("info is not an object")
    return info, None


def fields_of(payload: Any) -> tuple[list[dict[str, Any]], int | None]:
    """FieldInformationResultModel: {"fields": [{"name", …, "picklistValues": [...]}]}."""
    fields = object_of(payload)[0]["fields"]
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        raise TypeError("fields is not a list of objects")
    return fields, len(fields)


def is_autotask_error(body: object) -> bool:
    """Whether a body is Autotask's error shape: `{"errors": ["…", …]}` (autotask-api.md §7)."""
    if not isinstance(body, dict):
        return False
    errors = body.get("errors")
    return isinstance(errors, list) and bool(errors) and all(isinstance(e, str) for e in errors)


def messages_of(body: object) -> list[str]:
    """Autotask's `{"errors": ["…"]}` messages, or ASP.NET's `{"Message": "…"}` (§7)."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [str(e) for e in errors if e]
        if isinstance(errors, str):
            return [errors]
        for key in ("Message", "message"):
            message = body.get(key)
            if isinstance(message, str):
                return [message]
        return []
    if isinstance(body, str) and body.strip():
        return [body.strip()[:300]]
    return []
