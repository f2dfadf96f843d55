"""The admin web form under /admin/: server-rendered pages, signed-in admins only.

`bp` is the blueprint every admin page hangs on (templates in connector/web/templates/admin/,
static files at /admin/static/). `security.protect` (called by create_app) puts the guards on
the whole app: every path under /admin/ but the sign-in page and static files needs a signed-in
admin, every form a CSRF token, and every answer the security headers. A new page: a view on
`bp` (or a blueprint under /admin/), a template extending admin/base.html, and, to be reached
from the navigation, a `NavItem` in `NAV` naming its endpoint (a page of one integration, taking
`integration_id`: in `INTEGRATION_NAV`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="../templates",
    static_folder="../static",
)


@dataclass(frozen=True)
class NavItem:
    """One entry of the admin navigation: its label and the endpoint of its page."""

    label: str
    endpoint: str


#: The navigation, in order. An entry whose endpoint no view serves yet is shown, not linked.
NAV: list[NavItem] = [
    NavItem("Home", "admin.home"),
    NavItem("Integrations", "admin.integrations"),
    NavItem("Alerts", "admin.alerts"),
    NavItem("Dead letters", "admin.dead_letters"),
    NavItem("Integration log", "admin.integration_log"),
    NavItem("API activity", "admin.api_activity"),
]


#: The pages of one integration, in setup order: shown as tabs on each of them (and on their
#: sub-pages: a page whose path starts with a tab's path is that tab's).
INTEGRATION_NAV: list[NavItem] = [
    NavItem("Connection", "admin.edit_integration"),
    NavItem("Mappings", "admin.mappings"),
    NavItem("Tenants", "admin.tenants"),
    NavItem("Monitor overrides", "admin.overrides"),
    NavItem("Delivery requests", "admin.delivery_requests"),
    NavItem("Webhooks", "admin.webhooks"),
    NavItem("Test ticket", "admin.test_ticket"),
    NavItem("Emergency contact", "admin.contact"),
    NavItem("On or off", "admin.activation"),
]


def protect(app: Flask) -> None:
    """Put the admin form's guards on `app`: cookie, sign-in gate, CSRF, headers, error pages."""
    security.protect(app, gate=auth.require_admin)


# The views register themselves on `bp`; imported last, as they import `bp` from here.
from connector.web.admin import (  # noqa: E402, F401
    activity,
    alerts,
    auth,
    contact,
    dead_letters,
    home,
    integration_form,
    integrations,
    log,
    mapping_tools,
    requests_editor,
    security,
    test_ticket,
    webhooks,
)
