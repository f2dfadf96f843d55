"""The `connector` console script: serve the service, run the Autotask sandbox, show settings."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connector.cli_config import config
from connector.cli_support import command_run as _command_run
from connector.cli_support import command_services as _command_services
from connector.cli_support import settings_or_exit as _settings
from connector.errors import ConfigError, UnavailableError
from connector.serving import (
    Supervisor,
    listen,
    lower_priority,
    metrics_dir,
    remove_metrics_dir,
    run_worker,
    serve_web,
    stop_on_signals,
    use_metrics_dir,
)

if TYPE_CHECKING:
    from adapters.sandbox import SandboxServer
    from adapters.sandbox.tenant import ApiTicketCategory
    from connector.services import Services

logger = logging.getLogger(__name__)

#: How often a starting worker asks again for a database that does not answer yet.
DATABASE_WAIT_SECONDS = 2.0


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


def shown_secret(value: str, *, preset: str = "", kept_in: str = "", fresh: bool = True) -> str:
    """A secret as `run` and `sandbox` print it: never a preset one (`preset`: its setting);
    a generated one only when just `fresh`ly made, and only to a terminal (a log keeps nothing).
    `kept_in`: the file that keeps it, named instead."""
    if preset:
        return f"preset ({preset}); not shown"
    if fresh and sys.stdout.isatty():
        return value + (f"  (shown this once; kept in {kept_in})" if kept_in else "")
    if kept_in:
        return f"kept in {kept_in}"
    return "generated at start; shown on a terminal only"


def _describe_sandbox(server: SandboxServer, settings: Mapping[str, Any]) -> str:
    user = server.sandbox.config.user
    base = server.url

    def preset(name: str) -> str:
        return f"CONNECTOR_{name}" if settings[name] else ""

    secret = shown_secret(user.secret, preset=preset("SANDBOX_SECRET"))
    code = shown_secret(user.integration_code, preset=preset("SANDBOX_INTEGRATION_CODE"))
    return "\n".join(
        [
            f"Autotask sandbox (a local simulator of Autotask PSA) on {base}",
            f"  REST API      {server.rest_url}v1.0/  (zone lookup: zoneInformation?user=…)",
            f"  SOAP API      {server.soap_url}",
            f"  API user      {user.username}",
            f"  Secret        {secret}",
            f"  Tracking id   {code}  (the ApiIntegrationCode header)",
            f"  Tickets       {base}_sandbox/tickets   calls: {base}_sandbox/calls",
            f"  Control       POST {base}_sandbox/reset   POST {base}_sandbox/faults",
        ]
    )


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
    click.echo(_describe_sandbox(server, settings))
    sys.stdout.flush()
    stop = threading.Event()
    stop_on_signals(stop)
    server.start()
    stop.wait()
    server.stop()


@main.command()
def run() -> None:
    """Run everything `make run` starts: the service, a worker, and the Autotask sandbox beside it.

    Each in its own process: WEB_CONCURRENCY web processes (gunicorn), a delivery worker
    (unless WORKER_ENABLED is false) and the sandbox. SIGTERM or Ctrl-C stops them all.

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
    var = _private_state_folder(Path("var"))
    if not settings["SANDBOX_STATE_FILE"]:
        settings["SANDBOX_STATE_FILE"] = str(var / "sandbox.sqlite")
    if not settings["SECRET_KEYS"]:
        settings["SECRET_KEYS"] = [_local_secret_key(var / "secret.key")]
    tokens: dict[str, str] = {}
    for name in ("HOOK_TOKEN", "API_TOKEN"):
        if settings[name]:
            tokens[name] = shown_secret("", preset=f"CONNECTOR_{name}")
            continue
        path = var / f"{name.lower()}.txt"
        settings[name], fresh = _local_token(path)
        tokens[name] = shown_secret(settings[name], kept_in=str(path), fresh=fresh)
    directory, _ = metrics_dir(var / "metrics")
    use_metrics_dir(directory)
    web_socket = _listen(settings)
    supervisor = Supervisor()
    try:
        description, integration = _start_sandbox_process(supervisor, settings)
        sandbox_integration = not settings["INTEGRATION"]
        if sandbox_integration:
            settings["INTEGRATION"] = integration
        _prepare(settings, refresh_connection=sandbox_integration)
    except BaseException:
        web_socket.close()
        supervisor.stop()
        raise
    base = f"http://{settings['HOST']}:{web_socket.getsockname()[1]}"
    two_way = _sandbox_ticket_webhook(settings, base) if sandbox_integration else ""
    click.echo(description)
    click.echo(f"\nConnector service on {base}/  (health: {base}/healthz)")
    click.echo(f"  Webhooks      POST {base}/hooks/generic")
    click.echo(f"  Hook token    {tokens['HOOK_TOKEN']}  (Authorization: Bearer …)")
    click.echo(f"  API           {base}/api/v1/alerts  token {tokens['API_TOKEN']}")
    click.echo(f"  Admin         {base}/admin/  ({_first_admin_hint(settings)})")
    click.echo(f"  Database      {settings['DATABASE_URL']}")
    if two_way:
        click.echo(f"  Two-way close {two_way}")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()
    _serve(supervisor, settings, web_socket, with_worker=settings["WORKER_ENABLED"])


#: How long `connector run` waits for the sandbox process to listen.
SANDBOX_START_SECONDS = 60


def _start_sandbox_process(
    supervisor: Supervisor, settings: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Start the sandbox in its own process; its description and the integration that uses it.

    The child binds the port (SANDBOX_PORT 0: a free one) and sends back what the parent prints
    and configures, so every web process gets the same integration.
    """
    import multiprocessing

    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    supervisor.start("sandbox", _run_sandbox, settings, sender, last=True)
    sender.close()
    try:
        if not receiver.poll(SANDBOX_START_SECONDS):
            raise click.ClickException("the sandbox did not start in time")
        message = receiver.recv()
    except EOFError:
        raise click.ClickException("the sandbox process exited at its start (see above)") from None
    finally:
        receiver.close()
    if message[0] != "ready":
        raise click.ClickException(message[1])
    return message[1], message[2]


#: How far below the connector's processes the sandbox of `connector run` runs.
SANDBOX_NICENESS = 10


def _run_sandbox(settings: Mapping[str, Any], sender: Any) -> None:
    """The sandbox process of `connector run`: listen, report, serve until SIGTERM."""
    # It stands in for Autotask, whose work is not this machine's in production: the
    # connector's own processes come first (serving.lower_priority).
    lower_priority(SANDBOX_NICENESS)
    try:
        server = _start_sandbox(settings, settings["SANDBOX_HOST"], settings["SANDBOX_PORT"])
    except click.ClickException as e:
        sender.send(("error", e.message))
        sender.close()
        raise SystemExit(1) from e
    sender.send(
        (
            "ready",
            _describe_sandbox(server, settings),
            _sandbox_integration(server, settings["AUTOTASK_API"]),
        )
    )
    sender.close()
    stop = threading.Event()
    stop_on_signals(stop)
    server.start()
    stop.wait()
    server.stop()


def _sandbox_ticket_webhook(settings: Mapping[str, Any], base: str) -> str:
    """Register the sandbox integration's ticket webhook (it keeps none across its restarts), so
    that a ticket completed in the sandbox as a technician closes its link; what to print."""
    from connector import create_app
    from connector.errors import ConnectorError
    from connector.integrations.ticket_webhooks import register_ticket_webhook

    services: Services = create_app(dict(settings)).extensions["connector"]
    try:
        registration = register_ticket_webhook(services, None, base)
    except ConnectorError as e:
        return f"not registered with the sandbox ({e})"
    finally:
        services.dispose()
    return (
        f"the sandbox calls {registration.url} on ticket changes"
        " (PATCH /_sandbox/tickets/<id> acts as a technician)"
    )


def _listen(settings: Mapping[str, Any]) -> socket.socket:
    """The web processes' socket, bound by the parent (so PORT 0 is known and printed)."""
    try:
        return listen(settings["HOST"], settings["PORT"])
    except OSError as e:
        raise click.ClickException(
            f"cannot listen on {settings['HOST']}:{settings['PORT']}: {e}"
        ) from e


def _prepare(settings: Mapping[str, Any], *, refresh_connection: bool = False) -> None:
    """prepare_database once, in the parent; its engine is gone before any child is forked."""
    from connector import create_app

    services: Services = create_app(dict(settings)).extensions["connector"]
    try:
        prepare_database(services, refresh_connection=refresh_connection)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    finally:
        services.dispose()


def _serve(
    supervisor: Supervisor,
    settings: Mapping[str, Any],
    web_socket: socket.socket,
    *,
    with_worker: bool,
) -> None:
    """Start the web processes (and a worker), supervise them; exit 1 when one died."""
    try:
        supervisor.start("web", serve_web, settings, web_socket.fileno())
    finally:
        web_socket.close()  # the web processes have it; a copy here would keep the port open
    if with_worker:
        supervisor.start("worker", run_worker, settings)
    code = supervisor.run()
    if code:
        raise click.ClickException("a process of the connector died; every other was stopped")


def _first_admin_hint(settings: Mapping[str, Any]) -> str:
    """How `connector run` says who can sign in; the password is never printed."""
    if settings["ADMIN_USERNAME"]:
        return f"admin {settings['ADMIN_USERNAME']!r} from CONNECTOR_ADMIN_USERNAME/_PASSWORD"
    return "no default admin: `.venv/bin/connector create-admin` makes the first"


def _private_state_folder(var: Path) -> Path:
    """`var/`, readable by this user only, as is everything made in it from now on.

    It holds the key that decrypts the stored Autotask secrets, the tokens and the database:
    the folder is 0700 and its files 0600 (also those an older version left readable), and
    this process and its children make files without group or other permissions.
    """
    os.umask(0o077)
    var.mkdir(mode=0o700, exist_ok=True)
    var.chmod(0o700)
    for path in var.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)
    return var


def _local_secret_key(path: Path) -> str:
    """The key in `path`, made on first use (owner-only permissions)."""
    from connector.secrets import new_key

    if not path.exists():
        _write_private(path, new_key())
    return path.read_text().strip()


def _local_token(path: Path) -> tuple[str, bool]:
    """A token kept in `path`, made on first use; whether it was made now."""
    from connector.secrets import new_token

    fresh = not path.exists()
    if fresh:
        _write_private(path, new_token())
    return path.read_text().strip(), fresh


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only, from the first byte."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


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
    help="Run a delivery worker process beside the web processes [WORKER_ENABLED].",
)
def serve(worker: bool | None) -> None:
    """Serve the connector (webhooks, API) on HOST:PORT, without the sandbox.

    WEB_CONCURRENCY web processes (gunicorn) and, with --worker, a delivery worker process; the
    database is migrated first. SIGTERM or Ctrl-C stops them all gracefully.
    """
    settings = _settings()
    directory, temporary = metrics_dir(None)
    use_metrics_dir(directory)
    try:
        web_socket = _listen(settings)
        try:
            _prepare(settings)
        except BaseException:
            web_socket.close()
            raise
        click.echo(f"Connector service on http://{settings['HOST']}:{web_socket.getsockname()[1]}/")
        sys.stdout.flush()
        _serve(
            Supervisor(),
            settings,
            web_socket,
            with_worker=settings["WORKER_ENABLED"] if worker is None else worker,
        )
    finally:
        if temporary:
            remove_metrics_dir(directory)


@main.command()
@click.option("--id", "worker_id", default=None, help="Name of this worker in leases and logs.")
def worker(worker_id: str | None) -> None:
    """Run a delivery worker (any number may share one PostgreSQL database)."""
    settings = _settings()
    _check_keys_or_exit(settings)
    run_worker(settings, worker_id)


def _check_keys_or_exit(settings: Mapping[str, Any]) -> None:
    """Refuse to go on when SECRET_KEYS cannot open the stored secrets (naming the setting).

    A database that does not answer (down, restarting) is waited for, as the worker's loop
    waits out an outage: a worker started meanwhile, by hand or by its process manager, starts
    once the database is back instead of dying with a traceback.
    """
    from connector import create_app
    from connector.integrations.keys import check_keys

    services: Services = create_app(dict(settings)).extensions["connector"]
    try:
        while True:
            try:
                check_keys(services)
                return
            except UnavailableError as e:
                logger.warning(
                    "worker.waiting_for_database",
                    extra={"error": str(e.__cause__ or e), "retry_in": DATABASE_WAIT_SECONDS},
                )
                time.sleep(DATABASE_WAIT_SECONDS)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    finally:
        services.dispose()


@main.group()
def keys() -> None:
    """The keys that encrypt the stored Autotask secrets (SECRET_KEYS)."""


@keys.command("new")
def keys_new() -> None:
    """Print a new key (put it first in SECRET_KEYS, then run `connector keys rotate`)."""
    from connector.secrets import new_key

    click.echo(new_key())


@keys.command("check")
def keys_check() -> None:
    """Check that SECRET_KEYS opens every stored secret."""
    from connector.integrations.keys import check_keys

    with _command_run() as services:
        count = check_keys(services)
    click.echo(f"SECRET_KEYS opens all {count} stored secrets")


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the first key of SECRET_KEYS.

    To change keys: `connector keys new`, put the new key first in SECRET_KEYS and keep the old
    ones after it, restart, run this, then remove the old keys.
    """
    from connector.integrations.keys import rotate_keys

    with _command_run() as services:
        count = rotate_keys(services)
    click.echo(
        f"re-encrypted {count} stored secrets with the first key of SECRET_KEYS; the other keys"
        " may now be removed"
    )


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema, and bootstrap the configured integration."""
    from connector import create_app

    settings = _settings()
    services = create_app(settings).extensions["connector"]
    try:
        prepare_database(services)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    finally:
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
    from connector.integrations.keys import check_keys
    from connector.integrations.settings import load_settings
    from connector.integrations.sources import check_source_options
    from connector.persistence.db import upgrade

    settings = services.settings
    upgrade(settings["DATABASE_URL"])
    # Before anything is stored with the keys: a wrong key is refused at start, by name.
    check_keys(services)
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
    from connector.integrations.editing import find_integration
    from connector.persistence.models import utcnow
    from connector.pipeline.outbox import replay_dead_letters

    with _command_run() as services, services.transaction() as session:
        if integration_id is not None:
            find_integration(session, integration_id)
        count = replay_dead_letters(
            session,
            now=utcnow(),
            max_age=services.max_delivery_age,
            integration_id=integration_id,
        )
    click.echo(f"{count} dead letter{'s' if count != 1 else ''} replayed")


@main.group("ticket-webhook")
def ticket_webhook() -> None:
    """Two-way close: the ticket system's webhook that tells the connector of closed tickets."""


@ticket_webhook.command("register")
@click.option(
    "--integration", "integration_id", type=int, default=None, help="Integration id [the first]."
)
@click.option(
    "--public-url",
    default=None,
    help="The address the ticket system reaches this service at [PUBLIC_URL].",
)
def ticket_webhook_register(integration_id: int | None, public_url: str | None) -> None:
    """Register the integration's ticket webhook through the ticket system's API.

    It calls POST <public url>/ticket-webhooks/<integration id> when a ticket is updated or
    deleted, leaves out the API user's own changes, and is signed with a new secret stored
    encrypted. Registering again replaces the stored secret (delete the older webhook there).
    """
    from connector.integrations.ticket_webhooks import register_ticket_webhook

    with _command_run() as services:
        registration = register_ticket_webhook(
            services, integration_id, public_url or services.settings["PUBLIC_URL"]
        )
    excluded = registration.excluded_resource_id
    click.echo(
        f"ticket webhook {registration.remote_id} registered for integration"
        f" {registration.integration_id}: it calls {registration.url}"
        + (f" and leaves out resource {excluded}'s changes" if excluded is not None else "")
    )
    if excluded is None:
        click.echo(
            "warning: the API user's own resource was not found: its changes are called back too",
            err=True,
        )


main.add_command(config)
