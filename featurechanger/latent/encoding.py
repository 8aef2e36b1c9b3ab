"""Batched encoding and decoding of uint8 images with any model that has encode/decode."""

from __future__ import annotations

import numpy as np
import torch

from featurechanger.data.torchdata import images_to_tensor


@torch.inference_mode()
def encode_images(model: torch.nn.Module, images: np.ndarray, *,
                  device: torch.device | str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Latents (N, D) float32 of images (N, R, R, 3) uint8 at the model's resolution."""
    model.eval()
    latents = [model.encode(images_to_tensor(images[start:start + batch_size]).to(device))
               .float().cpu() for start in range(0, len(images), batch_size)]
    return torch.cat(latents).numpy()


@torch.inference_mode()
def decode_latents(model: torch.nn.Module, latents: np.ndarray | torch.Tensor, *,
                   device: torch.device | str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Images (N, R, R, 3) float32 in [0, 1] decoded from latents (N, D)."""
    model.eval()
    z = torch.as_tensor(latents, dtype=torch.float32)
    images = [model.decode(z[start:start + batch_size].to(device)).float().clamp(0, 1).cpu()
              for start in range(0, len(z), batch_size)]
    return torch.cat(images).permute(0, 2, 3, 1).numpy()
