"""What every model shares: the encode/decode interface and a check of the input shape."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Autoencoder(nn.Module):
    """Maps images (B, 3, R, R) in [0, 1] to flat latents (B, D) and back.

    Subclasses set `name` (the registry key), `config` (their config dataclass) and
    `resolution` (the side R of the images they take and return now).
    """

    name: ClassVar[str]
    config: Any
    resolution: int

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def check_images(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape when `x` is not (B, 3, R, R)."""
        expected = (3, self.resolution, self.resolution)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{self.name} takes images of shape (B, {', '.join(map(str, expected))}); "
                f"got {tuple(x.shape)}. Resize the images to {self.resolution}x{self.resolution}."
            )
