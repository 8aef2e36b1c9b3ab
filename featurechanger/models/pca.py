"""PCA: the classic linear baseline, with the same encode/decode interface as the autoencoders.

`encode` projects the centred, flattened image on the top `latent_dim` principal components;
`decode` maps back and clips to [0, 1]. The components are fitted on the training split by
`fit_pca`, which streams over the uint8 images in chunks (subspace iteration with a
Rayleigh-Ritz step, Halko et al. 2011, section 4.5), so memory stays at a few (features x k)
matrices even at 64 px, where the full covariance would be 12288 x 12288.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from featurechanger.errors import ConfigError, DataError
from featurechanger.models.base import Autoencoder

PCA_ITERATIONS = 6  # passes of subspace iteration; see fit_pca


@dataclass(frozen=True)
class PCAConfig:
    latent_dim: int = 100  # principal components kept
    resolution: int = 32  # image side it works at

    def __post_init__(self) -> None:
        if not 1 <= self.latent_dim <= self.features:
            raise ConfigError(f"PCA keeps 1 to {self.features} components at {self.resolution} "
                              f"px; got {self.latent_dim!r}. Change --latent-dim.")

    @property
    def features(self) -> int:
        return 3 * self.resolution**2

    def subspace_width(self, oversample: int | None = None) -> int:
        """Directions `fit_pca` iterates on: the components plus `oversample` (default: as
        many again), at most every feature."""
        extra = self.latent_dim if oversample is None else oversample
        return min(self.latent_dim + extra, self.features)

    def check_training_size(self, count: int) -> None:
        """Raise DataError when `count` training images are too few to fit this PCA."""
        if count <= self.subspace_width():
            raise DataError(f"PCA with {self.latent_dim} components needs more than "
                            f"{self.subspace_width()} training images; got {count}. Lower "
                            f"--latent-dim or use a larger shard set.")


class PCA(Autoencoder):
    name = "pca"

    def __init__(self, config: PCAConfig) -> None:
        super().__init__()
        self.config = config
        self.resolution = config.resolution
        # Buffers, not parameters: they are fitted in closed form, and travel in state_dict.
        self.register_buffer("mean", torch.zeros(config.features))  # (F,)
        components = torch.zeros(config.latent_dim, config.features)  # (D, F), orthonormal rows
        self.register_buffer("components", components)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.check_images(x)
        return (x.flatten(1) - self.mean) @ self.components.T  # (B, D)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        flat = z @ self.components + self.mean  # (B, F)
        side = self.resolution
        return flat.clamp(0.0, 1.0).view(-1, 3, side, side)


def fit_pca(model: PCA, chunks: Callable[[], Iterable[torch.Tensor]],
            iterations: int = PCA_ITERATIONS, oversample: int | None = None,
            seed: int = 0) -> torch.Tensor:
    """Fit `model`'s mean and components; returns the variance along each component (D,).

    `chunks()` yields the training images as float tensors (b, 3, R, R) in [0, 1], the same
    sequence each time it is called (it is called once per pass). Subspace iteration converges
    at the rate (lambda_{k+p} / lambda_k) ** iterations; `oversample` p defaults to k, so that
    with 6 iterations the reconstruction error comes within 1% of an exact eigendecomposition's
    (tests/test_models.py checks it).
    """
    k, features = model.config.latent_dim, model.config.features
    width = model.config.subspace_width(oversample)

    device = model.mean.device  # chunks come on the model's device
    total, count = torch.zeros(features, dtype=torch.float64, device=device), 0
    for chunk in chunks():
        total += chunk.flatten(1).sum(0, dtype=torch.float64)
        count += chunk.shape[0]
    model.config.check_training_size(count)
    mean = (total / count).float()

    def covariance_times(basis: torch.Tensor) -> torch.Tensor:  # (F, w) -> (F, w)
        product = torch.zeros_like(basis)
        for chunk in chunks():
            centred = chunk.flatten(1) - mean  # (b, F)
            product += centred.T @ (centred @ basis)
        return product / (count - 1)

    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(features, width, generator=generator).to(device)).Q
    for _ in range(iterations):
        basis = torch.linalg.qr(covariance_times(basis)).Q
    # Rayleigh-Ritz: the best rank-k approximation inside the subspace found.
    eigenvalues, rotation = torch.linalg.eigh(basis.T @ covariance_times(basis))
    order = torch.argsort(eigenvalues, descending=True)[:k]
    model.mean.copy_(mean)
    model.components.copy_((basis @ rotation[:, order]).T)
    return eigenvalues[order]


def pca_passes(iterations: int = PCA_ITERATIONS) -> int:
    """Passes `fit_pca` makes over the images: the mean, each iteration, and Rayleigh-Ritz."""
    return iterations + 2
