"""The `connector` console script: serve the service, run the Autotask sandbox, show settings."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from connector.cli_config import config
from connector.cli_support import command_services as _command_services
from connector.cli_support import settings_or_exit as _settings

if TYPE_CHECKING:
    from adapters.sandbox import SandboxServer
    from adapters.sandbox.tenant import ApiTicketCategory
    from connector.services import Services


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Autotask Alert Connector: monitoring alerts in, Autotask tickets out."""


def _start_sandbox(settings: Mapping[str, Any], host: str, port: int) -> SandboxServer:
    # The sandbox is an adapter; the CLI, like create_app, is a composition root allowed to wire it.
    from adapters.sandbox import (
        LimitSettings,
        Sandbox,
        SandboxConfig,
        SandboxServer,
        make_api_user,
    )

    config = SandboxConfig(
        user=make_api_user(
            settings["SANDBOX_USERNAME"],
            settings["SANDBOX_SECRET"],
            settings["SANDBOX_INTEGRATION_CODE"],
        ),
        limits=LimitSettings(
            hourly_threshold=settings["SANDBOX_HOURLY_THRESHOLD"],
            timeframe_minutes=settings["SANDBOX_THRESHOLD_TIMEFRAME_MINUTES"],
            latency_tiers=[(float(a), float(b)) for a, b in settings["SANDBOX_LATENCY_TIERS"]],
            thread_limit=settings["SANDBOX_THREAD_LIMIT"],
            latency_seconds=float(settings["SANDBOX_LATENCY_SECONDS"]),
        ),
        strict_properties=settings["SANDBOX_STRICT_PROPERTIES"],
        opaque_errors=settings["SANDBOX_OPAQUE_ERRORS"],
        state_file=settings["SANDBOX_STATE_FILE"] or None,
        refuse_inactive_companies=settings["SANDBOX_REFUSE_INACTIVE_COMPANIES"],
        api_ticket_category=_ticket_category(settings["SANDBOX_API_TICKET_CATEGORY"]),
    )
    try:
        server = SandboxServer(Sandbox(config), host=host, port=port, access_log=True)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port} for the sandbox: {e}") from e
    return server


def _ticket_category(raw: Any) -> ApiTicketCategory | None:
    """Read SANDBOX_API_TICKET_CATEGORY, failing like any other bad setting."""
    from marshmallow import ValidationError

    from adapters.sandbox.tenant import load_ticket_category

    try:
        return load_ticket_category(raw)
    except ValidationError as e:
        raise click.ClickException(
            f"configuration error: SANDBOX_API_TICKET_CATEGORY: {e.messages}"
        ) from e


def _describe_sandbox(server: SandboxServer) -> str:
    user = server.sandbox.config.user
    base = server.url
    return "\n".join(
        [
            f"Autotask sandbox (a local simulator of Autotask PSA) on {base}",
            f"  REST API      {server.rest_url}v1.0/  (zone lookup: zoneInformation?user=…)",
            f"  SOAP API      {server.soap_url}",
            f"  API user      {user.username}",
            f"  Secret        {user.secret}",
            f"  Tracking id   {user.integration_code}  (the ApiIntegrationCode header)",
            f"  Tickets       {base}_sandbox/tickets   calls: {base}_sandbox/calls",
            f"  Control       POST {base}_sandbox/reset   POST {base}_sandbox/faults",
        ]
    )


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@main.command()
@click.option("--host", default=None, help="Address to listen on [SANDBOX_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [SANDBOX_PORT, 8081].")
@click.option("--state-file", default=None, help="Keep records in this SQLite file.")
def sandbox(host: str | None, port: int | None, state_file: str | None) -> None:
    """Run the Autotask sandbox alone (REST + SOAP simulator, /_sandbox/ controls)."""
    override: dict[str, Any] = {}
    if state_file:
        override["SANDBOX_STATE_FILE"] = state_file
    settings = _settings(override)
    server = _start_sandbox(
        settings,
        host or settings["SANDBOX_HOST"],
        settings["SANDBOX_PORT"] if port is None else port,
    )
    click.echo(_describe_sandbox(server))
    sys.stdout.flush()
    stop = threading.Event()
    _stop_on_signals(stop)
    server.start()
    stop.wait()
    server.stop()


@main.command()
def run() -> None:
    """Run everything `make run` starts: the service, a worker, and the Autotask sandbox beside it.

    Ports come from PORT (8080) and SANDBOX_PORT (8081) or their CONNECTOR_ settings. With no
    INTEGRATION configured, the sandbox becomes the default integration. State lives in var/.
    """
    override: dict[str, Any] = {}
    for name in ("PORT", "SANDBOX_PORT"):
        if os.environ.get(name):
            try:
                override[name] = int(os.environ[name])
            except ValueError as e:
                raise click.ClickException(f"{name} must be a port number") from e
    settings = _settings(override)
    flavour = settings["AUTOTASK_API"]
    from adapters.sandbox import SandboxServer  # a composition root, like create_app

    if not settings["INTEGRATION"] and flavour not in SandboxServer.FLAVOURS:
        wanted = " or ".join(SandboxServer.FLAVOURS)
        raise click.ClickException(f"AUTOTASK_API must be {wanted}, got {flavour!r}")
    var = Path("var")
    var.mkdir(exist_ok=True)
    if not settings["SANDBOX_STATE_FILE"]:
        settings["SANDBOX_STATE_FILE"] = str(var / "sandbox.sqlite")
    if not settings["SECRET_KEYS"]:
        settings["SECRET_KEYS"] = [_local_secret_key(var / "secret.key")]
    generated = {}
    for name in ("HOOK_TOKEN", "API_TOKEN"):
        if not settings[name]:
            settings[name] = generated[name] = _local_token(var / f"{name.lower()}.txt")
    sandbox_server = _start_sandbox(settings, settings["SANDBOX_HOST"], settings["SANDBOX_PORT"])
    sandbox_integration = not settings["INTEGRATION"]
    if sandbox_integration:
        settings["INTEGRATION"] = _sandbox_integration(sandbox_server, settings["AUTOTASK_API"])
    web, services = _make_web_server(settings)
    prepare_database(services, refresh_connection=sandbox_integration)
    base = f"http://{settings['HOST']}:{web.server_port}"
    click.echo(_describe_sandbox(sandbox_server))
    click.echo(f"\nConnector service on {base}/  (health: {base}/healthz)")
    click.echo(f"  Webhooks      POST {base}/hooks/generic")
    click.echo(f"  Hook token    {settings['HOOK_TOKEN']}  (Authorization: Bearer …)")
    click.echo(f"  API           {base}/api/v1/alerts  token {settings['API_TOKEN']}")
    if generated:
        click.echo(
            "  (tokens kept in var/; preset them with CONNECTOR_HOOK_TOKEN / CONNECTOR_API_TOKEN)"
        )
    click.echo(f"  Admin         {base}/admin/  ({_first_admin_hint(settings)})")
    click.echo(f"  Database      {settings['DATABASE_URL']}")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()
    sandbox_server.start()
    _serve_until_stopped(web, services, with_worker=settings["WORKER_ENABLED"])
    sandbox_server.stop()


def _first_admin_hint(settings: Mapping[str, Any]) -> str:
    """How `connector run` says who can sign in; the password is never printed."""
    if settings["ADMIN_USERNAME"]:
        return f"admin {settings['ADMIN_USERNAME']!r} from CONNECTOR_ADMIN_USERNAME/_PASSWORD"
    return "no default admin: `.venv/bin/connector create-admin` makes the first"


def _serve_until_stopped(web: Any, services: Services, *, with_worker: bool) -> None:
    """Serve (and work, if asked) until SIGTERM or SIGINT; then stop cleanly."""
    stop = threading.Event()
    _stop_on_signals(stop)
    threads = [threading.Thread(target=web.serve_forever, name="web", daemon=True)]
    if with_worker:
        from connector.wiring import make_worker

        worker = make_worker(services)
        threads.append(threading.Thread(target=worker.run, args=(stop,), name="worker"))
    for thread in threads:
        thread.start()
    stop.wait()
    web.shutdown()
    for thread in threads:
        thread.join(timeout=30)
    web.server_close()
    services.dispose()


def _local_secret_key(path: Path) -> str:
    """The key in `path`, made on first use (owner-only permissions)."""
    from connector.secrets import new_key

    if not path.exists():
        path.write_text(new_key())
        path.chmod(0o600)
    return path.read_text().strip()


def _local_token(path: Path) -> str:
    """A token kept in `path`, made on first use."""
    from connector.secrets import new_token

    if not path.exists():
        path.write_text(new_token())
        path.chmod(0o600)
    return path.read_text().strip()


def _sandbox_integration(server: SandboxServer, flavour: str) -> dict[str, Any]:
    """The default integration of `make run`: the sandbox, with a default company and tenants.

    `flavour` (the AUTOTASK_API setting) chooses its API: rest or soap.
    """
    user = server.sandbox.config.user
    return {
        "name": "default",
        "api_flavour": flavour,
        "zone_lookup_url": server.zone_lookup_url(flavour),
        "username": user.username,
        "secret": user.secret,
        "integration_code": user.integration_code,
        "allowed_zone_hosts": ["127.0.0.1"],
        "default_company_id": 29683414,
        "queue_id": 29682833,
        "tenants": {"fabrikam": 29683415, "northwind": 29683416},
    }


@main.command()
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Run a delivery worker thread in this process [WORKER_ENABLED].",
)
def serve(worker: bool | None) -> None:
    """Serve the connector (webhooks, API) on HOST:PORT, without the sandbox."""
    settings = _settings()
    web, services = _make_web_server(settings)
    prepare_database(services)
    click.echo(f"Connector service on http://{settings['HOST']}:{web.server_port}/")
    sys.stdout.flush()
    _serve_until_stopped(
        web, services, with_worker=settings["WORKER_ENABLED"] if worker is None else worker
    )


@main.command()
@click.option("--id", "worker_id", default=None, help="Name of this worker in leases and logs.")
def worker(worker_id: str | None) -> None:
    """Run a delivery worker (any number may share one PostgreSQL database)."""
    from connector import create_app
    from connector.wiring import make_worker

    settings = _settings()
    services = create_app(settings).extensions["connector"]
    stop = threading.Event()
    _stop_on_signals(stop)
    make_worker(services, worker_id=worker_id).run(stop)
    services.dispose()


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema, and bootstrap the configured integration."""
    from connector import create_app

    settings = _settings()
    services = create_app(settings).extensions["connector"]
    prepare_database(services)
    services.dispose()
    click.echo(f"database at {settings['DATABASE_URL']} is up to date")


def prepare_database(services: Services, *, refresh_connection: bool = False) -> None:
    """Migrate, then seed the configured integration (when missing), the preset tokens and the
    first admin.

    `refresh_connection`: an existing configured integration takes the configured connection
    (`run`'s sandbox integration, whose port and generated credentials change between starts).
    """
    from connector.admins.accounts import ensure_configured_admin
    from connector.integrations.bootstrap import ensure_api_token, sync_configured_integration
    from connector.integrations.editing import EditContext
    from connector.integrations.settings import load_settings
    from connector.integrations.sources import check_source_options
    from connector.persistence.db import upgrade

    settings = services.settings
    upgrade(settings["DATABASE_URL"])
    with services.transaction() as session:
        if settings["INTEGRATION"]:
            integration = sync_configured_integration(
                session,
                settings["INTEGRATION"],
                EditContext.of(services),
                hook_token=settings["HOOK_TOKEN"],
                refresh_connection=refresh_connection,
            )
            check_source_options(
                load_settings(integration.settings).source_options, services.sources
            )
        if settings["API_TOKEN"]:
            ensure_api_token(session, settings["API_TOKEN"], label="preset")
        # Only while no admin exists: unattended starts get their first admin, no one else.
        ensure_configured_admin(session, settings)


def _make_web_server(settings: Mapping[str, Any]) -> tuple[Any, Services]:
    from werkzeug.serving import make_server

    from connector import create_app

    app = create_app(dict(settings))
    try:
        server = make_server(settings["HOST"], settings["PORT"], app, threaded=True)
    except OSError as e:
        raise click.ClickException(
            f"cannot listen on {settings['HOST']}:{settings['PORT']}: {e}"
        ) from e
    return server, app.extensions["connector"]


@main.command("create-admin")
@click.option("--username", default=None, help="The new admin's username [asked].")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking twice.",
)
def create_admin(username: str | None, password_stdin: bool) -> None:
    """Make an admin of the web form (/admin/); the database is migrated first.

    There are no default credentials: this (or CONNECTOR_ADMIN_USERNAME and
    CONNECTOR_ADMIN_PASSWORD at a start with no admin yet) makes the first admin. Exits 1, saying
    why, for a username that is taken or invalid or a password shorter than 12 characters.
    """
    from connector.admins.accounts import AccountRefused
    from connector.admins.accounts import create_admin as make_admin
    from connector.persistence.db import make_engine, make_session_factory, upgrade

    settings = _settings()
    if username is None:
        username = click.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    upgrade(settings["DATABASE_URL"])
    engine = make_engine(settings["DATABASE_URL"])
    try:
        with make_session_factory(engine).begin() as session:
            user = make_admin(session, username, password, how="cli")
            name = user.username
    except AccountRefused as e:
        raise click.ClickException(f"no admin made: {e}") from e
    finally:
        engine.dispose()
    click.echo(f"admin {name!r} created; sign in at /admin/login")


@main.command("send-test")
@click.option(
    "--integration", "integration_id", type=int, default=None, help="Integration id [the first]."
)
@click.option(
    "--company",
    "company_id",
    type=int,
    default=None,
    help="Autotask company id [the integration's default_company_id].",
)
@click.option(
    "--complete/--no-complete",
    default=False,
    help="Then complete the ticket with the Cleared note and update requests.",
)
def send_test(integration_id: int | None, company_id: int | None, complete: bool) -> None:
    """Send a test ticket to Autotask through an integration; print the JSON result.

    Exits 1 when the ticket could not be made (the result says why in plain words).
    """
    import json

    from connector.errors import ConnectorError
    from connector.pipeline.testdelivery import send_test as send_test_ticket

    services = _command_services()
    try:
        result = send_test_ticket(
            services,
            integration_id=integration_id,
            company_id=company_id,
            complete=complete,
        )
        body, ok = result.body, result.ok
    except ConnectorError as e:
        body, ok = {"ok": False, "error": str(e)}, False
    finally:
        services.dispose()
    click.echo(json.dumps(body, indent=2))
    if not ok:
        sys.exit(1)


@main.command("replay-dead")
@click.option(
    "--integration", "integration_id", type=int, default=None, help="Only this integration's."
)
def replay_dead(integration_id: int | None) -> None:
    """Replay every dead letter (after fixing their cause): each is delivered again by the
    worker, in its alert's order; discarded ones are left alone."""
    from connector.errors import ConnectorError
    from connector.integrations.editing import find_integration
    from connector.persistence.models import utcnow
    from connector.pipeline.outbox import replay_dead_letters

    services = _command_services()
    try:
        with services.transaction() as session:
            if integration_id is not None:
                find_integration(session, integration_id)
            count = replay_dead_letters(
                session,
                now=utcnow(),
                max_age=services.max_delivery_age,
                integration_id=integration_id,
            )
    except ConnectorError as e:
        raise click.ClickException(str(e)) from e
    finally:
        services.dispose()
    click.echo(f"{count} dead letter{'s' if count != 1 else ''} replayed")


main.add_command(config)
