"""PyTorch views of shard sets: a map-style Dataset by split and resolution, and a converter.

Kept apart from featurechanger.data.shards so that reading shards never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from featurechanger.data.shards import ShardSet


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


class ShardDataset(Dataset):
    """The images of one split at one resolution, held in memory as uint8.

    Item i is (image, labels): a (3, S, S) float32 tensor in [0, 1] and a (40,) uint8 tensor.
    DataLoader workers share the arrays copy-on-write.
    """

    def __init__(self, shard_set: ShardSet, split: str | None, size: int) -> None:
        arrays = shard_set.load(size, split)
        self.images = arrays.images  # (N, S, S, 3) uint8
        self.labels = torch.from_numpy(arrays.labels)  # (N, 40) uint8
        self.image_ids = arrays.image_ids

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1).float().div_(255)
        return image, self.labels[index]
