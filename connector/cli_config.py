"""`connector config`: the effective settings; the integrations exported and imported as JSON.

The export holds no secret (integrations/transfer.py says what it holds); the import creates or
updates integrations by name in one transaction, through the same checks as the JSON API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from connector.cli_support import command_services, database, settings_or_exit
from connector.config import SECRET_SETTINGS


@click.group("config", invoke_without_command=True)
@click.pass_context
def config(context: click.Context) -> None:
    """Print the effective settings (secrets hidden); `export` and `import` the integrations."""
    if context.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    for key in sorted(settings):
        value = settings[key]
        shown = "<secret>" if key in SECRET_SETTINGS and value else repr(value)
        click.echo(f"{key} = {shown}")


@config.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-", help="File [stdout].")
def config_export(output: str) -> None:
    """Write every integration as JSON: fields, settings, tenant map, requests; NO secrets."""
    from connector.integrations.transfer import dump_document, export_configuration

    services = command_services()
    try:
        with database(services) as session:
            text = dump_document(export_configuration(session, services.profiles))
    finally:
        services.dispose()
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@config.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Check and report, change nothing.")
def config_import(file: Any, dry_run: bool) -> None:
    """Create or update integrations by name from an export; all or nothing.

    Secrets left out of the file are kept. Integrations the file does not name are untouched.
    """
    from connector.integrations.editing import EditContext
    from connector.integrations.transfer import import_configuration, read_document
    from connector.persistence.db import upgrade

    services = command_services()
    try:
        upgrade(services.settings["DATABASE_URL"])
        with database(services) as session:
            results = import_configuration(
                session, EditContext.of(services), read_document(file.read())
            )
            if dry_run:
                session.rollback()
            else:
                session.commit()
    finally:
        services.dispose()
    for result in results:
        click.echo(("(dry run) " if dry_run else "") + result.describe())
