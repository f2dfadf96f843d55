"""Security headers on every admin answer, and error pages without a stack trace (S10 of
../shared/reference/reliability-security.md; §4.3).

The crawl takes every GET route under /admin/ from the app's URL map (a page added later is
covered without touching this test), signed in, over https with the cookie Secure (where the
service sends HSTS: README "Behind TLS") and over plain http (where it does not, since browsers
ignore HSTS there). Ids that name no row give the admin 404 page, which must carry them too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from connector.admins.accounts import create_admin
from tests.conftest import default_integration_id
from tests.web.admin.conftest import PASSWORD, USERNAME, make_app, sign_in

pytestmark = [
    pytest.mark.with_integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),  # headers, not rows
]

#: Words of the exception the broken views raise: no error page may show them.
INTERNAL_DETAIL = "canary-internal-detail-8e21"


def broken() -> str:
    """A view with a bug."""
    raise RuntimeError(INTERNAL_DETAIL)


@pytest.fixture(params=["https", "http"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def site(admin_settings: dict[str, object], scheme: str) -> Iterator[Flask]:
    """The app over `scheme` (https: ADMIN_COOKIE_SECURE), with one admin and a broken view
    under /admin/ and outside it."""
    app = make_app({**admin_settings, "ADMIN_COOKIE_SECURE": scheme == "https"})
    try:
        extra = Blueprint("broken", __name__, url_prefix="/admin/broken")
        extra.add_url_rule("/", "view", broken)
        app.register_blueprint(extra)
        app.add_url_rule("/broken-for-the-test", "broken_outside", broken)
        with app.extensions["connector"].transaction() as session:
            create_admin(session, USERNAME, PASSWORD, how="test")
        yield app
    finally:
        app.extensions["connector"].dispose()


@pytest.fixture
def signed_in(site: Flask, scheme: str) -> FlaskClient:
    client = site.test_client()
    answer: Any = sign_in(client, path=f"{scheme}://localhost/admin/login")
    assert answer.status_code == 303
    return client


def admin_get_paths(app: Flask) -> list[str]:
    """Every GET path under /admin/, ids filled with the integration's or 1."""
    known: dict[str, object] = {
        "integration_id": default_integration_id(app),
        "filename": "admin.css",
        "status": "active",
        "action": "create",
    }
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "broken.view":
            continue
        if rule.rule.startswith("/admin") and "GET" in rule.methods:
            values = {name: known.get(name, 1) for name in rule.arguments}
            paths.append(rule.build(values)[1])
    return paths


def assert_security_headers(answer: Any, *, hsts: bool, where: str) -> None:
    """The admin form's headers on `answer`: HSTS of a year or more exactly when `hsts`."""
    headers = answer.headers
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin"), where
    if not hsts:
        assert "Strict-Transport-Security" not in headers, where
        return
    found = re.fullmatch(
        r"max-age=(\d+)(; includeSubDomains)?", headers["Strict-Transport-Security"]
    )
    assert found and int(found.group(1)) >= 31_536_000, where


def test_every_admin_answer_carries_the_security_headers(
    site: Flask, signed_in: FlaskClient, scheme: str
) -> None:
    paths = admin_get_paths(site)
    assert len(paths) >= 20
    statuses = []
    for path in paths:
        with signed_in.get(f"{scheme}://localhost{path}") as answer:
            statuses.append(answer.status_code)
            assert answer.status_code in (200, 302, 303, 404), (path, answer.status_code)
            assert_security_headers(answer, hsts=scheme == "https", where=path)
    assert statuses.count(200) >= 10, statuses
    # Signed out too: the sign-in page and the redirect to it.
    for path in ("/admin/login", "/admin/"):
        answer = site.test_client().get(f"{scheme}://localhost{path}")
        assert_security_headers(answer, hsts=scheme == "https", where=f"signed out {path}")


ERRORS = [
    ("GET", "/admin/no-such-page", 404),
    ("GET", "/admin/logout", 405),
    ("GET", "/admin/broken/", 500),
    ("GET", "/no/such/page", 404),
    ("GET", "/hooks/generic", 405),
    ("GET", "/broken-for-the-test", 500),
]


@pytest.mark.parametrize(("method", "path", "status"), ERRORS, ids=[row[1] for row in ERRORS])
def test_error_pages_show_no_stack_trace_with_debug_off(
    site: Flask,
    signed_in: FlaskClient,
    scheme: str,
    method: str,
    path: str,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert site.debug is False and not site.config["PROPAGATE_EXCEPTIONS"]
    caplog.set_level(logging.ERROR)

    answer = signed_in.open(f"{scheme}://localhost{path}", method=method)

    assert answer.status_code == status
    page = answer.get_data(as_text=True)
    for trace in ("Traceback", 'File "', "line ", INTERNAL_DETAIL, "RuntimeError", "werkzeug"):
        assert trace not in page, (path, trace)
    if path.startswith("/admin"):
        assert answer.mimetype == "text/html"
        assert f"<h1>Error {status}</h1>" in page
        assert_security_headers(answer, hsts=scheme == "https", where=path)
    else:
        assert answer.get_json()["error"]["status"] == status
    if status == 500:  # the trace goes to the log instead, under the answer's request id
        [logged] = [r for r in caplog.records if r.getMessage() == "connector.unexpected_error"]
        assert logged.exc_info is not None
        assert answer.headers["X-Request-Id"] == getattr(logged, "request_id", None)
        assert answer.headers["X-Request-Id"] in page
