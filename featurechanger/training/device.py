"""Which device to train or evaluate on, and the precision used there."""

from __future__ import annotations

import contextlib

from typing import TypeVar

import torch
from torch import nn

from featurechanger.errors import ConfigError

Module = TypeVar("Module", bound=nn.Module)


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


def for_training(module: Module, device: torch.device | str) -> Module:
    """`module` on `device`, to be trained there. On the CPU its convolution weights are stored
    channels-last (NHWC), in which oneDNN's convolutions ran 1.2 to 1.6 times as fast as in NCHW
    for every net here (bench/memory_format.py); the outputs agree up to rounding. On CUDA it is
    left as bench/gpu_check.sh measured it."""
    device = torch.device(device)
    module = module.to(device)
    return module.to(memory_format=torch.channels_last) if device.type == "cpu" else module
