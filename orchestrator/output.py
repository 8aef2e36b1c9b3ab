"""Printing results for people and for scripts (`--json`), and the shared CLI options."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")


def emit(payload: Any, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print `payload` as JSON, or as the human text `human` makes of it."""
    if as_json or human is None:
        click.echo(to_json(payload))
    else:
        click.echo(human(payload) if callable(human) else human)


def to_json(payload: Any) -> str:
    """Strict JSON: a value that cannot be measured (NaN, such as the balanced accuracy of an
    attribute with one class only) or is infinite is null, since JSON has no literal for them
    and parsers such as jq and JavaScript's reject Python's `NaN`."""
    return json.dumps(_finite_or_null(payload), indent=2, sort_keys=True, default=str,
                      allow_nan=False)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def settings_from_context(ctx: click.Context):  # noqa: ANN201
    """The Settings the top-level options built (see orchestrator.cli.main)."""
    return ctx.find_root().obj["settings"]
