"""The sources this service takes webhooks from, and what to configure on each sending side."""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, jsonify, request

from connector.errors import NotFoundError
from connector.web.api import api_blueprint
from connector.web.hooks import services

bp = api_blueprint("api_sources", __name__)


def hook_url(slug: str) -> str:
    """Where a sender posts to `slug` here: at PUBLIC_URL, or as the caller reached this service."""
    root = services().settings["PUBLIC_URL"] or request.url_root
    return f"{root.rstrip('/')}/hooks/{slug}"


@bp.get("/sources")
def list_sources() -> Response:
    """Every source: its slug, name and webhook URL."""
    sources = services().sources
    body = [
        {"slug": slug, "name": source.display_name, "hook_url": hook_url(slug)}
        for slug, source in sources.items()
    ]
    return jsonify({"sources": body})


@bp.get("/sources/<slug>/sender-setup")
def sender_setup(slug: str) -> Response:
    """What to paste on the sending side of `slug`, filled in with this service's URL."""
    source = services().sources.get(slug)
    if source is None:
        raise NotFoundError(f"no source {slug!r}")
    url = hook_url(slug)
    snippets = [asdict(snippet) for snippet in source.sender_setup(url)]
    return jsonify(
        {"slug": slug, "name": source.display_name, "hook_url": url, "snippets": snippets}
    )
