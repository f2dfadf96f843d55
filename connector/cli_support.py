"""What the `connector` commands share: settings (or a clean exit), Services, a database session."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connector.config import load_settings
from connector.errors import ConfigError, ConnectorError
from connector.logs import configure_logging

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from connector.services import Services


def settings_or_exit(override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings, with logging configured from them (LOG_FORMAT, LOG_LEVEL)."""
    try:
        settings = load_settings(override)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    configure_logging(settings)
    return settings


def command_services() -> Services:
    """The Services of a one-off command; beside `make run`, its secret key from var/."""
    from connector import create_app

    settings = settings_or_exit()
    key_file = Path("var") / "secret.key"
    if not settings["SECRET_KEYS"] and key_file.exists():
        # Beside `make run`, whose key lives in var/ unless SECRET_KEYS is set.
        settings["SECRET_KEYS"] = [key_file.read_text().strip()]
    services: Services = create_app(settings).extensions["connector"]
    return services


@contextmanager
def command_run() -> Iterator[Services]:
    """The Services of a one-off command, closed after it; its refusals as ClickException."""
    services = command_services()
    try:
        yield services
    except ConnectorError as e:
        raise click.ClickException(str(e)) from e
    finally:
        services.dispose()


@contextmanager
def database(services: Services) -> Iterator[Session]:
    """A session (rolled back unless committed); refusals and database errors as ClickException."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with services.sessions() as session:
            yield session
    except ConnectorError as e:
        raise click.ClickException(str(e)) from e
    except SQLAlchemyError as e:
        raise click.ClickException(
            f"the database cannot be read ({type(e).__name__}); is it migrated? run"
            " `connector db upgrade`"
        ) from e
