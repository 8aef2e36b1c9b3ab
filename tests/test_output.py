"""What commands print for scripts: strict JSON."""

from __future__ import annotations

import json

import pytest

from orchestrator.output import to_json


def reject_constant(name: str) -> None:
    pytest.fail(f"{name} is not JSON")


def test_unmeasurable_and_infinite_values_print_as_null() -> None:
    printed = to_json({"accuracy": {"Bald": float("nan"), "Male": 0.98},
                       "interval": (0.5, float("inf")), "n": 3})
    assert json.loads(printed, parse_constant=reject_constant) == {
        "accuracy": {"Bald": None, "Male": 0.98}, "interval": [0.5, None], "n": 3}
