"""The admin form's home page and the navigation every admin page shows."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, render_template, request, url_for

from connector.web.admin import NAV, bp
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


@bp.app_context_processor
def navigation() -> dict[str, object]:
    """Give every template `nav_links` (a function: pages without a signed-in admin skip it)."""
    return {"nav_links": nav_links}


@bp.get("/")
def home() -> str:
    """Who is signed in, and where to go from here."""
    return render_template("admin/home.html", admin=current_admin())
