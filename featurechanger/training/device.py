"""Which device to train or evaluate on, and the precision used there."""

from __future__ import annotations

import contextlib

import torch

from featurechanger.errors import ConfigError


def pick_device(choice: str) -> torch.device:
    """'auto' (CUDA when there is a GPU, else CPU), 'cpu' or 'cuda'."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA GPU here; use "
                          "--device cpu or auto.")
    if choice != "cpu" and choice != "cuda":
        raise ConfigError(f"Unknown device {choice!r}. Valid values: auto, cpu, cuda.")
    return torch.device(choice)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full precision elsewhere (CPU bf16 is slower, not faster)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
