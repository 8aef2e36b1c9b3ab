"""`featurechanger db`: schema migrations."""

from __future__ import annotations

import click

from orchestrator.output import emit, json_option, settings_from_context


@click.group()
def db() -> None:
    """Manage the records database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
@json_option
@click.pass_context
def upgrade(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Apply migrations to the configured database (SQLite default or DATABASE_URL)."""
    from featurechanger.db.migrate import upgrade as run_upgrade
    from featurechanger.db.session import shown_url

    settings = settings_from_context(ctx)
    reached = run_upgrade(settings.database_url, revision)
    emit({"database_url": shown_url(settings.database_url), "revision": reached}, as_json,
         lambda p: f"Database {p['database_url']} is at revision {p['revision']}.")


@db.command()
@json_option
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Show the schema revision of the database and the one this version needs."""
    from featurechanger.db.migrate import current_revision, head_revision
    from featurechanger.db.session import shown_url

    url = settings_from_context(ctx).database_url
    payload = {"database_url": shown_url(url), "revision": current_revision(url),
               "head": head_revision(url)}
    emit(payload, as_json,
         lambda p: f"{p['database_url']}: revision {p['revision']} (head {p['head']})")

