"""A tiny world for the editing tests: faces made of a few known patterns, and a model that
sees them exactly.

Photos are 89x109 (CelebA's aspect, half size); the model sees the centre square (rows
10..99) shrunk to 8x8 px. `identity_model()` is a PCA whose components are the identity, so
its latents are the 8x8 pixels themselves and vectors are mean differences of pixels.
Eyeglasses draw a dark band across the eye line, Male darkens the lower face, Smiling
lightens the mouth; glasses are worn mostly by men (P(Male | Eyeglasses) is about 0.86), as
on CelebA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featurechanger.attributes import ATTRIBUTE_INDEX
from featurechanger.data.shards import ShardArrays
from featurechanger.models import build_model
from featurechanger.render.images import resize, to_uint8

WIDTH, HEIGHT, RESOLUTION = 89, 109, 8
CROP_BOX = (0, 10, 89, 99)
EYE_ROWS = slice(44, 52)  # the band glasses darken, in photo rows
EYES = (30, 48, 59, 48)  # left eye x, y and right eye x, y
GLASSES, MALE, SMILING = (ATTRIBUTE_INDEX[name] for name in ("Eyeglasses", "Male", "Smiling"))


@dataclass
class World:
    photos: np.ndarray  # (N, 48, 40, 3) uint8
    twins: np.ndarray  # the same faces without glasses
    arrays: ShardArrays  # 8 px images, labels, all in the train split


def identity_model() -> torch.nn.Module:
    model = build_model("pca", latent_dim=3 * RESOLUTION**2, resolution=RESOLUTION)
    model.components.copy_(torch.eye(3 * RESOLUTION**2))
    return model.eval()


def make_world(count: int = 400, seed: int = 0, partitions: np.ndarray | None = None) -> World:
    rng = np.random.default_rng(seed)
    labels = np.zeros((count, 40), dtype=np.uint8)
    labels[:, MALE] = rng.random(count) < 0.5
    labels[:, GLASSES] = rng.random(count) < np.where(labels[:, MALE] == 1, 0.3, 0.05)
    labels[:, SMILING] = rng.random(count) < 0.5
    skin = 0.5 + 0.2 * rng.random((count, 1, 1, 3))
    base = np.clip(skin + 0.02 * rng.standard_normal((count, HEIGHT, WIDTH, 3)), 0, 1)
    base[labels[:, MALE] == 1, 70:99] *= 0.6
    base[labels[:, SMILING] == 1, 80:86, 30:59] = 0.95
    with_glasses = base.copy()
    with_glasses[labels[:, GLASSES] == 1, EYE_ROWS] = 0.1
    photos, twins = to_uint8(with_glasses), to_uint8(base)
    left, top, right, bottom = CROP_BOX
    images = np.stack([to_uint8(resize(photo[top:bottom, left:right].astype(np.float32) / 255,
                                       RESOLUTION, RESOLUTION)) for photo in photos])
    arrays = ShardArrays(
        images=images, labels=labels,
        partitions=np.zeros(count, dtype=np.uint8) if partitions is None else partitions,
        image_ids=[f"{i + 1:06d}.jpg" for i in range(count)],
        source_paths=[f"img/{i + 1:06d}.png" for i in range(count)],
        crop_boxes=np.tile(np.array(CROP_BOX, dtype=np.int32), (count, 1)),
        landmarks=np.tile(np.array([*EYES, 44, 65, 33, 82, 56, 82], dtype=np.int32), (count, 1)))
    return World(photos, twins, arrays)


def write_photos(root: Path, photos: np.ndarray, source_paths: list[str]) -> Path:
    """Write the photos as lossless PNGs under `root` at their source paths."""
    for photo, source in zip(photos, source_paths):
        path = root / source
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo).save(path)
    return root


@pytest.fixture(scope="module")
def one_thread() -> None:
    """Small convolutions on a shared 2-core machine run several times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
