"""Training batches from one split held in memory as a uint8 tensor on the training device.

A split is read from the shards once (N x S x S x 3 bytes: 49 MB for 16,000 faces at 32 px,
2 GB for CelebA's train split at 64 px), then every batch is an index into it converted to
float, on the device itself, so that the model never waits for a loader. The batch order is
a pure function of (seed, step): each epoch is a permutation drawn from a generator seeded by
(seed, epoch), which makes a resumed run see exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from featurechanger.data.shards import ShardSet
from featurechanger.errors import DataError
from featurechanger.models import Autoencoder


def load_split(shard_set: ShardSet, side: int, split: str, device: torch.device) -> torch.Tensor:
    """One split of a shard set at `side` px: uint8 (N, S, S, 3) on `device`."""
    images = shard_set.load(side, split=split).images
    if len(images) == 0:
        raise DataError(f"The shard set {str(shard_set.path)!r} has no {split!r} images; "
                        f"training and evaluation use the dataset's official train/val/test "
                        f"partitions.")
    return torch.from_numpy(images).to(device)


def shard_side(model: Autoencoder) -> int:
    """The shard resolution a model reads: a growing PGAE reads its final one and averages it
    down to the phase's resolution."""
    return getattr(model.config, "final_resolution", model.resolution)


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, S, S) in [0, 1], on the same device (the tensor
    counterpart of featurechanger.data.torchdata.images_to_tensor, which takes numpy arrays)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def resize_to(images: torch.Tensor, side: int) -> torch.Tensor:
    """Float images (B, 3, S, S) averaged down to (B, 3, side, side); S must be a multiple."""
    current = images.shape[-1]
    if current == side:
        return images
    if current % side:
        raise ValueError(f"cannot average {current} px images down to {side} px")
    return F.avg_pool2d(images, current // side)


class EpochBatches:
    """Which images make up each training step: drop-last batches of per-epoch permutations."""

    def __init__(self, count: int, batch_size: int, seed: int,
                 device: torch.device | str = "cpu") -> None:
        if count < batch_size:
            raise DataError(f"The train split has {count} images, fewer than one batch of "
                            f"{batch_size}; lower --batch-size or use a larger shard set.")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.device = torch.device(device)
        self.steps_per_epoch = count // batch_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        """Indices (B,) of the images of training step `step` (0-based), on the device. The
        permutation moves there once per epoch: a copy per step would make the host wait for
        the GPU to finish the previous step before it could queue the next."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed((self.seed << 32) + epoch)
            order = torch.randperm(self.count, generator=generator)  # the same on every device
            self._epoch, self._order = epoch, order.to(self.device)
        start = position * self.batch_size
        return self._order[start:start + self.batch_size]
