"""Reconstruction sheets: a PNG with input images above the model's outputs."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

SHEET_TILE = 128  # tiles are enlarged (nearest) to about this many pixels, to be seen


def write_sheet(inputs: torch.Tensor, outputs: torch.Tensor, path: Path) -> Path:
    """Save inputs (top row) over outputs (bottom row), float (n, 3, R, R) in [0, 1]."""
    count, side = inputs.shape[0], inputs.shape[-1]
    scale = max(1, SHEET_TILE // side)
    tiles = torch.cat([inputs, outputs]).detach().float().cpu().clamp(0, 1)  # (2n, 3, R, R)
    tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")
    grid = make_grid(tiles, nrow=count, padding=2, pad_value=1.0)  # (3, H, W)
    pixels = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path
