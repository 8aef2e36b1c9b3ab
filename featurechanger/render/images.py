"""Image array helpers shared by sheets, GIFs and composition: conversion, resizing, saving.

torch (for resampling and blurs) is imported inside the functions that use it, so that code
which only checks options (a job submitted from the CLI) can import the render package quickly.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (any shape) -> uint8, rounded; uint8 input is returned as is."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of one (H, W, C) float image, without clamping (differences stay signed).

    Downsizing is antialiased, so that a shrunk image matches what a camera at that size sees.
    """
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    shrinking = width < image.shape[1] or height < image.shape[0]
    resized = F.interpolate(tensor[None], size=(height, width), mode="bicubic",
                            align_corners=False, antialias=shrinking)[0]
    return resized.permute(1, 2, 0).numpy()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """An (H, W, C) float image blurred by a Gaussian of `sigma` pixels (edges replicated)."""
    import torch
    import torch.nn.functional as F

    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    channels = tensor[:, None]  # (C, 1, H, W): each channel blurred on its own
    padded = F.pad(channels, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1))
    return blurred[:, 0].permute(1, 2, 0).numpy()


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 or float image scaled (aspect kept) so that its longer side is `size`, as uint8."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    resized = Image.fromarray(to_uint8(image)).resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(temporary) next to `path`, then rename it into place: readers never see half.
    The temporary name is this writer's own, so that two writers of one file do not collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
                               f"{path.suffix}")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def save_image(image: np.ndarray, path: Path) -> Path:
    """Save an (H, W, 3) uint8 or [0, 1] float image; the format follows the file's suffix."""
    return write_atomically(path, lambda target: Image.fromarray(to_uint8(image)).save(target))
