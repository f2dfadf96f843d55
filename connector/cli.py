"""The `connector` console script: serve the service, run the Autotask sandbox, show settings."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from connector.config import load_settings
from connector.errors import ConfigError

if TYPE_CHECKING:
    from adapters.targets.sandbox import SandboxServer

#: Settings whose values are never printed.
SECRET_SETTINGS = {"SANDBOX_SECRET", "SANDBOX_INTEGRATION_CODE"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Autotask Alert Connector: monitoring alerts in, Autotask tickets out."""


def _settings(override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    try:
        return load_settings(override)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e


def _start_sandbox(settings: Mapping[str, Any], host: str, port: int) -> SandboxServer:
    # The sandbox is an adapter; the CLI, like create_app, is a composition root allowed to wire it.
    from adapters.targets.sandbox import (
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
        ),
        strict_properties=settings["SANDBOX_STRICT_PROPERTIES"],
        state_file=settings["SANDBOX_STATE_FILE"] or None,
    )
    try:
        server = SandboxServer(Sandbox(config), host=host, port=port, access_log=True)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port} for the sandbox: {e}") from e
    return server


def _describe_sandbox(server: SandboxServer) -> str:
    user = server.sandbox.config.user
    base = server.url
    return "\n".join(
        [
            f"Autotask sandbox (a local simulator of Autotask PSA) on {base}",
            f"  REST API      {base}atservicesrest/v1.0/  (zone lookup: zoneInformation?user=…)",
            f"  SOAP API      {base}ATServices/1.6/atws.asmx",
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
    """Run everything `make run` starts: the service and the Autotask sandbox beside it.

    Ports come from PORT (8080) and SANDBOX_PORT (8081) or their CONNECTOR_ settings.
    """
    override: dict[str, Any] = {}
    for name in ("PORT", "SANDBOX_PORT"):
        if os.environ.get(name):
            try:
                override[name] = int(os.environ[name])
            except ValueError as e:
                raise click.ClickException(f"{name} must be a port number") from e
    settings = _settings(override)
    sandbox_server = _start_sandbox(settings, settings["SANDBOX_HOST"], settings["SANDBOX_PORT"])
    web = _make_web_server(settings)
    click.echo(_describe_sandbox(sandbox_server))
    click.echo(f"\nConnector service on http://{settings['HOST']}:{web.server_port}/")
    click.echo(f"  Health        http://{settings['HOST']}:{web.server_port}/healthz")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()
    stop = threading.Event()
    _stop_on_signals(stop)
    sandbox_server.start()
    web_thread = threading.Thread(target=web.serve_forever, name="web", daemon=True)
    web_thread.start()
    stop.wait()
    web.shutdown()
    web.server_close()
    sandbox_server.stop()


def _make_web_server(settings: Mapping[str, Any]) -> Any:
    from werkzeug.serving import make_server

    from connector import create_app

    app = create_app(dict(settings))
    try:
        return make_server(settings["HOST"], settings["PORT"], app, threaded=True)
    except OSError as e:
        raise click.ClickException(
            f"cannot listen on {settings['HOST']}:{settings['PORT']}: {e}"
        ) from e


@main.command("config")
def show_config() -> None:
    """Print the effective settings (secrets hidden)."""
    settings = _settings()
    for key in sorted(settings):
        value = settings[key]
        shown = "<secret>" if key in SECRET_SETTINGS and value else repr(value)
        click.echo(f"{key} = {shown}")
