"""Images per second: the original project's per-sample JPEG loader against shards, side by side.

Seed-style loader: a Dataset that opens each JPEG with PIL and applies torchvision's
Resize((s, s)) and ToTensor, batched by a DataLoader (as the original project trained).
Shard loaders: the same DataLoader over ShardDataset (uint8 arrays in memory), and plain
in-memory batching (random indices -> images_to_tensor), which is what training loops use.
Also measured, for the record: synthetic faces per second on one core, and the shard build.

    .venv/bin/python bench/data_loading.py [--count 2000] [--loader-workers 0]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from featurechanger.data.celeba import open_celeba
from featurechanger.data.shards import build_shards
from featurechanger.data.synth import write_synthetic
from featurechanger.data.torchdata import ShardDataset, images_to_tensor

OUT = Path(__file__).resolve().parent / "out" / "data_loading"


class SeedStyleDataset(Dataset):
    """Per sample: PIL open, Resize((s, s)) of the whole photo, ToTensor (the seed's recipe)."""

    def __init__(self, root: Path, size: int) -> None:
        dataset = open_celeba(root)
        self.paths = [dataset.image_dir / image_id for image_id in dataset.image_ids]
        self.labels = torch.from_numpy(dataset.labels)
        self.transform = transforms.Compose([transforms.Resize((size, size)),
                                             transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def images_per_second(loader: DataLoader, limit: int) -> float:
    """Time batches until `limit` images have passed (after one warm-up batch)."""
    iterator = iter(loader)
    next(iterator)
    seen, started = 0, time.perf_counter()
    while seen < limit:
        try:
            images, _ = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        seen += len(images)
    return seen / (time.perf_counter() - started)


def in_memory_batches_per_second(images: np.ndarray, batch_size: int, limit: int) -> float:
    """Random batches straight from the uint8 array, converted to float tensors."""
    generator = np.random.default_rng(0)
    seen, started = 0, time.perf_counter()
    while seen < limit:
        batch = images_to_tensor(images[np.sort(generator.choice(len(images), batch_size,
                                                                 replace=False))])
        seen += len(batch)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="synthetic faces to load")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--loader-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--seed-images", type=int, default=1500,
                        help="images the slow loader reads per measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    faces, shards = OUT / "faces", OUT / "shards"

    load_before = os.getloadavg()[0]
    sample = 256
    started, cpu_started = time.perf_counter(), time.process_time()
    write_synthetic(OUT / "one-core", sample, seed=1, workers=1, progress=False, replace=True)
    synth_wall = sample / (time.perf_counter() - started)
    synth_cpu = sample / (time.process_time() - cpu_started)  # immune to other processes
    write_synthetic(faces, args.count, seed=0, progress=False, replace=True)
    started = time.perf_counter()
    shard_set = build_shards(faces, shards, sizes=(32, 64), shard_size=512, progress=False,
                             replace=True)
    build_rate = args.count / (time.perf_counter() - started)

    def loader(dataset: Dataset) -> DataLoader:
        return DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                          num_workers=args.loader_workers, drop_last=True,
                          persistent_workers=args.loader_workers > 0)

    rows = []
    for size in (32, 64):
        seed = images_per_second(loader(SeedStyleDataset(faces, size)), args.seed_images)
        shard_dataset = ShardDataset(shard_set, None, size)
        via_loader = images_per_second(loader(shard_dataset), 20 * args.count)
        in_memory = in_memory_batches_per_second(shard_dataset.images, args.batch_size,
                                                  50 * args.count)
        rows.append((size, seed, via_loader, in_memory))

    print(f"load average before the run: {load_before:.1f} on {os.cpu_count()} cores")
    print(f"synthetic faces, one process: {synth_wall:,.0f} images/s wall clock, "
          f"{synth_cpu:,.0f} images per CPU-second")
    print(f"shard build (32 + 64 px, all cores): {build_rate:,.0f} images/s")
    print(f"DataLoader workers: {args.loader_workers}, batch {args.batch_size}, "
          f"torch threads 1, {args.count} synthetic 178x218 JPEGs\n")
    print("| size | seed loader (img/s) | ShardDataset + DataLoader (img/s) | ratio "
          "| in-memory shard batches (img/s) | ratio |")
    print("|---|---|---|---|---|---|")
    for size, seed, via_loader, in_memory in rows:
        print(f"| {size} | {seed:,.0f} | {via_loader:,.0f} | {via_loader / seed:.1f}x "
              f"| {in_memory:,.0f} | {in_memory / seed:.1f}x |")


if __name__ == "__main__":
    main()
