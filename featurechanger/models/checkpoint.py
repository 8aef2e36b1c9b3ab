"""Checkpoint files: a model's config and weights, plus training state when saved mid-run.

A checkpoint is a dict of plain values and tensors, so it loads with
`torch.load(weights_only=True)` (no code runs from the file) and rebuilds its model from the
config it stores, without any other file:

    {"format": "featurechanger-checkpoint", "version": 1, "model": "dcae",
     "config": {...}, "state_dict": {...}, "training": {...} or absent}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from featurechanger.errors import DataError, FeatureChangerError
from featurechanger.models import MODELS, Autoencoder, build_model, config_dict
from featurechanger.torch_files import load_weights_file

FORMAT = "featurechanger-checkpoint"
VERSION = 1


def save_checkpoint(path: Path | str, model: Autoencoder,
                    training: dict[str, Any] | None = None) -> Path:
    """Write `model` (and `training` state, if given) to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.name,
        "config": config_dict(model),
        "state_dict": model.state_dict(),
    }
    if training is not None:
        payload["training"] = training
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)  # a crash mid-write never leaves a truncated checkpoint
    return path


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The checked contents of a checkpoint file, tensors on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Checkpoint {str(path)!r} does not exist: restore it, or train its run "
                        f"again (`featurechanger runs show RUN` says which file a run uses).")
    payload = load_weights_file(path, "a featurechanger checkpoint", "Train its run again "
                                "(`featurechanger runs list` shows which run wrote it).")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{str(path)!r} is not a featurechanger checkpoint (no "
                        f"format={FORMAT!r} entry); it may be a plain state dict.")
    if payload.get("version") != VERSION:
        raise DataError(f"Checkpoint {str(path)!r} has format version "
                        f"{payload.get('version')!r}; this featurechanger reads {VERSION}.")
    if payload.get("model") not in MODELS:
        raise DataError(f"Checkpoint {str(path)!r} is for model {payload.get('model')!r}; "
                        f"known models: {', '.join(MODELS)}.")
    return payload


def model_from_checkpoint(payload: dict[str, Any], source: str) -> Autoencoder:
    """Rebuild the model a checkpoint payload describes and load its weights (train mode);
    `source` names the checkpoint in errors."""
    try:
        model = build_model(payload["model"], **payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (FeatureChangerError, RuntimeError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{source} does not match its own model config: {error}") from error
    return model


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> Autoencoder:
    """The model saved in `path`, on `device`, in eval mode, ready to encode and decode."""
    model = model_from_checkpoint(read_checkpoint(path), f"Checkpoint {str(path)!r}")
    return model.to(device).eval()
