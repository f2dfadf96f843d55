"""Signing in to the admin form: sessions, cookies, CSRF, the gate, slowing down guessing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector.admins import passwords
from connector.persistence.models import AdminSession, AdminUser, LoginFailure
from connector.web.admin.security import cookie_secure
from tests import canaries
from tests.web.admin.conftest import (
    PASSWORD,
    USERNAME,
    CountingHasher,
    FakeClock,
    csrf_of,
    make_app,
    sign_in,
)

WRONG = "Wrong username or password."


def signed_in_as(client: FlaskClient) -> str | None:
    """Who the home page says is signed in; None when it sends the client to sign in."""
    response = client.get("/admin/")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/admin/login")
        return None
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Signed in as" in page
    return USERNAME if f"<strong>{USERNAME}</strong>" in page else page


def count(app: Flask, model: Any) -> int:
    with app.extensions["connector"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- signing in and out ---------------------------------------------------------------------------


def test_the_right_password_signs_in_and_home_shows_who_and_the_nav(browser: FlaskClient) -> None:
    response = sign_in(browser)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    page = browser.get("/admin/").get_data(as_text=True)
    assert f"Signed in as <strong>{USERNAME}</strong>" in page
    for label in ("Integrations", "Alerts", "Dead letters", "API activity"):
        assert label in page
    assert 'action="/admin/logout"' in page


def test_usernames_ignore_case_and_surrounding_spaces(browser: FlaskClient) -> None:
    sign_in(browser, username=f"  {USERNAME.upper()} ")
    assert signed_in_as(browser) == USERNAME


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, PASSWORD + "x"), (USERNAME, PASSWORD.upper()), ("nobody", PASSWORD)],
)
def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    browser: FlaskClient, username: str, password: str
) -> None:
    response = sign_in(browser, username, password)
    assert response.status_code == 200
    assert WRONG in response.get_data(as_text=True)
    assert signed_in_as(browser) is None


def test_an_unknown_user_costs_a_password_verification_too(
    browser: FlaskClient, hasher: CountingHasher
) -> None:
    sign_in(browser, "nobody", "some password 123")
    assert hasher.verified == ["some password 123"]


def test_there_are_no_default_credentials(admin_settings: dict[str, object]) -> None:
    app = make_app(admin_settings)
    try:
        assert count(app, AdminUser) == 0
        client = app.test_client()
        for username, password in [("admin", "admin"), ("admin", "password"), ("root", "")]:
            response = sign_in(client, username, password)
            assert response.status_code in (200, 429)
            assert signed_in_as(client) is None
    finally:
        app.extensions["connector"].dispose()


def test_signing_out_needs_a_post_with_the_csrf_token(browser: FlaskClient) -> None:
    sign_in(browser)
    assert browser.get("/admin/logout").status_code == 405
    refused = browser.post("/admin/logout")
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    assert signed_in_as(browser) == USERNAME

    token = csrf_of(browser.get("/admin/").get_data(as_text=True))
    response = browser.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/login"
    assert "You are signed out." in browser.get("/admin/login").get_data(as_text=True)
    assert signed_in_as(browser) is None


def test_after_signing_out_the_old_cookie_is_worthless(
    admin_app: Flask, browser: FlaskClient
) -> None:
    sign_in(browser)
    cookie = browser.get_cookie("connector_admin")
    assert cookie is not None
    token = csrf_of(browser.get("/admin/").get_data(as_text=True))
    browser.post("/admin/logout", data={"csrf_token": token})
    assert count(admin_app, AdminSession) == 0

    thief = admin_app.test_client()
    thief.set_cookie("connector_admin", cookie.value)
    assert signed_in_as(thief) is None


def test_signing_in_starts_a_new_session_from_nothing(
    admin_app: Flask, browser: FlaskClient
) -> None:
    """No session fixation: nothing set before signing in survives it, the cookie changes.

    (The session lives under /admin/ only: see security.AdminSessions.)
    """
    with browser.session_transaction("/admin/") as session:
        session["planted"] = "by someone else"
    before = browser.get_cookie("connector_admin")
    sign_in(browser)
    after = browser.get_cookie("connector_admin")
    assert before is not None and after is not None and after.value != before.value
    with browser.session_transaction("/admin/") as session:
        assert "planted" not in session
        assert set(session) - {"_permanent"} == {"admin_token"}


def test_a_session_ends_after_its_lifetime(browser: FlaskClient, clock: FakeClock) -> None:
    sign_in(browser)
    clock.advance(12 * 3600 - 1)
    assert signed_in_as(browser) == USERNAME
    clock.advance(2)
    assert signed_in_as(browser) is None


def test_a_sign_in_records_the_time_and_rehashes_with_new_parameters(
    admin_app: Flask, browser: FlaskClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with admin_app.extensions["connector"].sessions() as session:
        old_hash = session.scalar(select(AdminUser.password_hash))
    stronger = passwords.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "HASHER", stronger)
    sign_in(browser)
    with admin_app.extensions["connector"].sessions() as session:
        user = session.scalars(select(AdminUser)).one()
    assert user.password_hash != old_hash
    assert "m=1024,t=2,p=1" in user.password_hash
    assert stronger.verify(user.password_hash, PASSWORD)
    assert user.last_login_at == clock.now


# -- the cookie and the headers -----------------------------------------------------------------


def test_the_session_cookie_is_httponly_and_samesite_lax(browser: FlaskClient) -> None:
    response = sign_in(browser)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("connector_admin=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http by default: a Secure cookie would never come back


def test_behind_tls_the_cookie_is_secure_and_host_only(admin_settings: dict[str, object]) -> None:
    app = make_app({**admin_settings, "ADMIN_COOKIE_SECURE": True})
    try:
        with app.extensions["connector"].transaction() as session:
            from connector.admins.accounts import create_admin

            create_admin(session, USERNAME, PASSWORD, how="test")
        client = app.test_client()
        response = sign_in(client, path="https://localhost/admin/login")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-connector_admin=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Domain" not in cookie
        home = client.get("https://localhost/admin/")
        assert home.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        app.extensions["connector"].dispose()


def test_a_public_url_on_https_makes_the_cookie_secure_too() -> None:
    assert cookie_secure({"ADMIN_COOKIE_SECURE": False, "PUBLIC_URL": "https://alerts.example"})
    assert not cookie_secure({"ADMIN_COOKIE_SECURE": False, "PUBLIC_URL": "http://10.0.0.5"})
    assert not cookie_secure({"ADMIN_COOKIE_SECURE": False})


def test_admin_pages_carry_the_security_headers_and_others_do_not(
    browser: FlaskClient,
) -> None:
    login = browser.get("/admin/login")
    sign_in(browser)
    for response in (login, browser.get("/admin/"), browser.get("/admin/nothing-here")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
    assert "Content-Security-Policy" not in browser.get("/healthz").headers


def test_pages_have_no_inline_script_and_a_label_for_every_field(browser: FlaskClient) -> None:
    page = browser.get("/admin/login").get_data(as_text=True)
    assert "<script>" not in page and "style=" not in page  # scripts only from files
    assert '<script src="/admin/static/progress.js" defer></script>' in page
    assert '<label for="username">' in page and '<label for="password">' in page
    with browser.get("/admin/static/admin.css") as css:
        assert css.status_code == 200 and b"font" in css.get_data()


def test_what_was_typed_is_shown_escaped(browser: FlaskClient) -> None:
    page = sign_in(browser, "<script>x</script>", "whatever").get_data(as_text=True)
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


# -- the gate and CSRF ---------------------------------------------------------------------------


def admin_rules(app: Flask) -> list[Any]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and rule.endpoint not in ("admin.static", "admin.login")
    ]


def path_of(rule: Any) -> str:
    """A concrete path for `rule` (every argument 1)."""
    path = rule.rule
    for argument in rule.arguments:
        path = path.replace(f"<{argument}>", "1").replace(f"<int:{argument}>", "1")
    return str(path)


def test_every_admin_page_without_a_session_goes_to_the_sign_in(
    admin_app: Flask, browser: FlaskClient
) -> None:
    rules = admin_rules(admin_app)
    assert {rule.endpoint for rule in rules} >= {"admin.home", "admin.logout"}
    checked = 0
    for rule in rules:
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = browser.open(path_of(rule), method=method)
            assert response.status_code in (302, 303), (method, rule.rule)
            assert response.headers["Location"].startswith("/admin/login"), rule.rule
            checked += 1
    for path in ("/admin", "/admin/no-such-page", "/admin/integrations/1/edit"):
        response = browser.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")
    assert checked >= 2


def test_the_sign_in_brings_back_to_the_page_asked_for(browser: FlaskClient) -> None:
    first = browser.get("/admin/?tab=2")
    assert first.headers["Location"] == "/admin/login?next=/admin/?tab%3D2"
    response = sign_in(browser, path=first.headers["Location"])
    assert response.headers["Location"] == "/admin/?tab=2"


#: Where `next=` must not lead: other sites, and pages outside the admin form.
OFF_SITE = [
    "https://evil.example/admin/",
    "//evil.example/admin/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/hooks/generic",
    "/admin/../hooks/generic",
    "/admin/%2e%2e/hooks/generic",
    "/admin/login?next=https://evil.example",
    "%2F%2Fevil.example",
    "/\t/evil.example",
    " //evil.example",
    "http:/admin/",
]


def test_next_cannot_send_anyone_off_the_admin_form(admin_app: Flask) -> None:
    from urllib.parse import quote

    for target in OFF_SITE:
        client = admin_app.test_client()
        response = sign_in(client, path=f"/admin/login?next={quote(target, safe='')}")
        assert response.status_code == 303, target
        assert response.headers["Location"] == "/admin/", target


def test_every_state_changing_admin_route_refuses_a_missing_csrf_token(
    admin_app: Flask, browser: FlaskClient
) -> None:
    sign_in(browser)
    checked = 0
    login = [rule for rule in admin_app.url_map.iter_rules() if rule.endpoint == "admin.login"]
    for rule in [*admin_rules(admin_app), *login]:
        for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            response = browser.open(path_of(rule), method=method, data={"x": "1"})
            assert response.status_code == 400, (method, rule.rule)
            assert "CSRF" in response.get_data(as_text=True)
            checked += 1
    assert checked >= 2
    assert signed_in_as(browser) == USERNAME


def test_a_sign_in_without_the_csrf_token_is_refused(browser: FlaskClient) -> None:
    response = browser.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF check failed" in response.get_data(as_text=True)
    assert signed_in_as(browser) is None


def test_the_token_authenticated_routes_need_no_csrf_token(admin_app: Flask) -> None:
    """Hooks and the JSON API prove themselves with tokens: CSRF must never refuse them."""
    client = admin_app.test_client()
    checked = 0
    for rule in admin_app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            continue
        for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            response = client.open(path_of(rule), method=method, json={})
            assert response.status_code != 400 or "CSRF" not in response.get_data(as_text=True)
            assert response.status_code in (401, 404), (method, rule.rule, response.status_code)
            checked += 1
    assert checked >= 3


def test_without_secret_keys_the_admin_form_says_what_is_missing(database_url: str) -> None:
    app = make_app({"DATABASE_URL": database_url, "WORKER_ENABLED": False})
    try:
        response = app.test_client().get("/admin/login")
        assert response.status_code == 503
        assert "SECRET_KEYS" in response.get_data(as_text=True)
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        app.extensions["connector"].dispose()


# -- slowing down guessing -----------------------------------------------------------------------


def test_after_five_failures_even_the_right_password_waits(
    admin_app: Flask, browser: FlaskClient, clock: FakeClock, hasher: CountingHasher
) -> None:
    for _ in range(5):
        assert WRONG in sign_in(browser, password=canaries.WRONG_ADMIN_PASSWORD).get_data(
            as_text=True
        )
        clock.advance(1)
    hasher.verified.clear()
    refused = sign_in(browser)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "29"
    assert "Too many failed sign-ins; try again in 29 seconds." in refused.get_data(as_text=True)
    assert hasher.verified == []  # the password was not even checked
    assert signed_in_as(browser) is None

    clock.advance(29)
    assert sign_in(browser).status_code == 303
    assert signed_in_as(browser) == USERNAME
    assert count(admin_app, LoginFailure) == 0  # a success clears the username's failures


def test_the_pause_doubles_with_every_further_failure(
    browser: FlaskClient, clock: FakeClock
) -> None:
    for _ in range(5):
        sign_in(browser, password=f"{canaries.WRONG_ADMIN_PASSWORD}-1")
    clock.advance(30)
    assert WRONG in sign_in(browser, password=f"{canaries.WRONG_ADMIN_PASSWORD}-2").get_data(
        as_text=True
    )
    refused = sign_in(browser)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    clock.advance(60)
    sign_in(browser, password=f"{canaries.WRONG_ADMIN_PASSWORD}-3")
    assert sign_in(browser).headers["Retry-After"] == "120"


def test_failures_from_one_address_slow_down_every_username_from_it(
    browser: FlaskClient, clock: FakeClock, admin_app: Flask
) -> None:
    for n in range(5):
        sign_in(
            browser, f"guess{n}", f"{canaries.WRONG_ADMIN_PASSWORD}-1", remote_addr="203.0.113.9"
        )
    assert sign_in(browser, remote_addr="203.0.113.9").status_code == 429
    other = admin_app.test_client()
    assert sign_in(other, remote_addr="198.51.100.7").status_code == 303


@pytest.mark.parametrize("usernames", ["one", "each different"])
def test_the_sixth_failed_sign_in_from_one_address_within_a_minute_is_429(
    browser: FlaskClient, clock: FakeClock, hasher: CountingHasher, usernames: str
) -> None:
    answers: list[Any] = []
    for n in range(6):
        username = USERNAME if usernames == "one" else f"guess{n}@example.net"
        answers.append(sign_in(browser, username, f"wrong password {n}", remote_addr="203.0.113.7"))
        clock.advance(10)  # six tries in 50 s
    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert all(WRONG in answer.get_data(as_text=True) for answer in answers[:5])
    assert int(answers[5].headers["Retry-After"]) > 0
    assert "wrong password 5" not in hasher.verified  # refused before the password was checked


def test_failures_older_than_the_window_are_forgotten(
    browser: FlaskClient, clock: FakeClock
) -> None:
    for _ in range(4):
        sign_in(browser, password=f"{canaries.WRONG_ADMIN_PASSWORD}-1")
    clock.advance(15 * 60 + 1)
    sign_in(browser, password=f"{canaries.WRONG_ADMIN_PASSWORD}-2")
    assert sign_in(browser).status_code == 303


# -- logs ------------------------------------------------------------------------------------------


def test_no_password_is_ever_logged(
    browser: FlaskClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = canaries.WRONG_ADMIN_PASSWORD
    for _ in range(5):
        sign_in(browser, password=wrong)
    sign_in(browser, password=wrong)  # throttled
    sign_in(browser, "ghost", wrong + "x", remote_addr="192.0.2.1")
    clock.advance(3600)
    sign_in(browser)
    token = csrf_of(browser.get("/admin/").get_data(as_text=True))
    browser.post("/admin/logout", data={"csrf_token": token})

    events = [record.getMessage() for record in caplog.records]
    for event in ("admin.login_failed", "admin.login_throttled", "admin.login", "admin.logout"):
        assert event in events
    failed = [r for r in caplog.records if r.getMessage() == "admin.login_failed"]
    assert failed[0].username == USERNAME  # type: ignore[attr-defined]
    assert not hasattr(failed[-1], "username")  # a name no admin has: maybe a password
    for record in caplog.records:
        text = f"{record.getMessage()} {vars(record)}"
        assert PASSWORD not in text and wrong not in text


def test_a_page_another_blueprint_adds_under_admin_is_guarded_too(
    admin_settings: dict[str, object],
) -> None:
    from flask import Blueprint

    from connector.admins.accounts import create_admin

    app = make_app(admin_settings)
    try:
        extra = Blueprint("extra", __name__, url_prefix="/admin/extra")
        extra.add_url_rule("/do", "do", lambda: "done", methods=["GET", "POST"])
        app.register_blueprint(extra)
        with app.extensions["connector"].transaction() as session:
            create_admin(session, USERNAME, PASSWORD, how="test")
        client = app.test_client()
        assert client.post("/admin/extra/do").headers["Location"].startswith("/admin/login")
        sign_in(client)
        assert client.post("/admin/extra/do").status_code == 400
        page = client.get("/admin/extra/do")
        assert page.get_data(as_text=True) == "done"
        assert page.headers["X-Frame-Options"] == "DENY"
        token = csrf_of(client.get("/admin/").get_data(as_text=True))
        assert client.post("/admin/extra/do", data={"csrf_token": token}).status_code == 200
    finally:
        app.extensions["connector"].dispose()
