"""Printing results for people and for scripts (`--json`), and the shared CLI options."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A run, job or vector set id: a positive SQL integer (a larger one could not be looked up).
RECORD_ID = click.IntRange(min=1, max=2**63 - 1)


class OutputFile(click.Path):
    """A file to write, whose suffix picks its format: refused at once when it is not one of
    `suffixes`, rather than after the work that was to fill it."""

    def __init__(self, *suffixes: str) -> None:
        super().__init__(dir_okay=False)
        self.suffixes = suffixes

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if Path(path).suffix.lower() not in self.suffixes:
            self.fail(f"{str(value)!r} does not end in {', '.join(self.suffixes)}: its suffix "
                      f"picks the format.", param, ctx)
        return path


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
