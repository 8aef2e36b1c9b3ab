"""Reading the files featurechanger saves with torch.save: checkpoints, judges, localisers,
refiners, and the VGG19 weights a user passes."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from featurechanger.errors import DataError, first_line


def load_weights_file(path: Path | str, what: str, fix: str) -> Any:
    """torch.load(path) on the CPU with weights_only=True, so no code in the file runs.

    A damaged or foreign file is a DataError that names it, `what` it should have been and the
    `fix`, on one line. torch's own message for a file it cannot unpickle is left out: it
    advises loading with weights_only=False, which would run whatever code the file holds.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a damaged file
        if isinstance(error, pickle.UnpicklingError):
            reason = "not a file of tensors and plain values that torch.save wrote, or damaged"
        else:
            reason = f"{type(error).__name__}: {first_line(error, '')}"
        raise DataError(f"Cannot read {str(path)!r} as {what} ({reason}). {fix}") from error
