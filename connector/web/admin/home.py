"""The admin form's home page and the navigation every admin page shows."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, render_template, request, url_for

from connector.web.admin import INTEGRATION_NAV, NAV, bp
from connector.web.admin.auth import current_admin


@dataclass(frozen=True)
class NavLink:
    """A navigation entry as shown: its URL (None until a view serves it), current or not."""

    label: str
    url: str | None
    current: bool


def nav_links() -> list[NavLink]:
    """NAV as links: an entry whose endpoint no view serves yet is shown without one."""
    links = []
    for item in NAV:
        served = item.endpoint in current_app.view_functions
        url = url_for(item.endpoint) if served else None
        links.append(NavLink(item.label, url, request.endpoint == item.endpoint))
    return links


def integration_links() -> list[NavLink]:
    """On a page of one integration, INTEGRATION_NAV as links to that integration's pages."""
    integration_id = (request.view_args or {}).get("integration_id")
    if integration_id is None or request.blueprint != bp.name:
        return []
    links = []
    for item in INTEGRATION_NAV:
        url = url_for(item.endpoint, integration_id=integration_id)
        links.append(
            NavLink(item.label, url, request.path == url or request.path.startswith(url + "/"))
        )
    return links


@bp.app_context_processor
def navigation() -> dict[str, object]:
    """Give every template `nav_links` and `integration_links` (functions: pages without a
    signed-in admin skip them)."""
    return {"nav_links": nav_links, "integration_links": integration_links}


@bp.get("/")
def home() -> str:
    """Who is signed in, and where to go from here."""
    return render_template("admin/home.html", admin=current_admin())
