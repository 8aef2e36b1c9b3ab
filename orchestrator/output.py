"""Printing results for people and for scripts (`--json`), and the shared CLI options."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")


def emit(payload: Any, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print `payload` as JSON, or as the human text `human` makes of it."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))
    elif callable(human):
        click.echo(human(payload))
    elif human is not None:
        click.echo(human)
    else:
        click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def settings_from_context(ctx: click.Context):  # noqa: ANN201
    """The Settings the top-level options built (see orchestrator.cli.main)."""
    return ctx.find_root().obj["settings"]
