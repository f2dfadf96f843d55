"""GET /healthz: is this process up and configured."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 with the service's status."""
    return jsonify({"status": "ok"})
