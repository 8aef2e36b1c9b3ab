"""Training throughput and cost, measured side by side in one run.

For DCAE (32 px) and a grown PGAE (64 px), with the training step of featurechanger.training:
- images/s with batches from shards (the training path: a split loaded once into a uint8
  tensor on the device, batches indexed from it), from float tensors already on the device
  (the compute bound), and from the seed-style loader (PIL open, Resize, ToTensor, DataLoader);
- the share of each step spent waiting for data (on a GPU: the time it sits idle);
- FLOPs per training image (torch.utils.flop_counter) and the achieved GFLOP/s against a
  matrix-multiply peak measured in the same run;
- what the DFC loss (VGG19 up to relu3_1) costs relative to the DCAE itself.

    python bench/training.py --shards SHARDS [--device cpu|cuda] [--precision auto|bf16|fp32]
        [--batch-size 128]

SHARDS is a shard set with 32 and 64 px images (`featurechanger data shard ... --size 32
--size 64`); the seed-style loader reads the JPEGs of the dataset the shards were built from.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from featurechanger.data.shards import open_shard_set
from featurechanger.losses import DFCLoss, ReconstructionLoss
from featurechanger.models import Autoencoder, build_model
from featurechanger.training.batches import EpochBatches, load_split, resize_to, to_float_images
from featurechanger.training.device import pick_device, pick_precision
from featurechanger.training.loop import train_step
from featurechanger.training.options import PRECISIONS, TrainOptions

Batches = Callable[[int], torch.Tensor]  # step -> float (B, 3, R, R) on the device


@dataclass(frozen=True)
class Timing:
    images_per_s: float
    data_share: float  # share of the wall time spent producing batches


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int,
                rounds: int) -> float:
    """GFLOP/s of a square matrix multiply (best of `rounds`): the practical compute ceiling."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def make_model(name: str, device: torch.device) -> Autoencoder:
    torch.manual_seed(0)
    model = build_model(name)
    if name == "pgae":
        model.set_phase(model.config.final_resolution, 1.0)  # the grown model, the costliest
    return model.to(device).train()


def flops_per_image(name: str, loss_fn: ReconstructionLoss, device: torch.device,
                    precision: str) -> float:
    """FLOPs of one training step (forward and backward) divided by its images."""
    model = make_model(name, device)
    batch = torch.rand(8, 3, model.resolution, model.resolution, device=device)
    optimizer = torch.optim.Adam(model.parameters())
    with FlopCounterMode(display=False) as counter:
        train_step(model, optimizer, loss_fn, batch, precision)
    return counter.get_total_flops() / len(batch)


def measure(name: str, loss_fn: ReconstructionLoss, batches: Batches, batch_size: int,
            steps: int, warmup: int, device: torch.device, precision: str) -> Timing:
    """Train `steps` steps (after `warmup`) on `batches`, timing the data and the whole."""
    model = make_model(name, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data_time, start = 0.0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            data_time, start = 0.0, time.perf_counter()
        synchronize(device)  # the GPU is idle from here until the batch is ready
        before = time.perf_counter()
        batch = batches(step)
        synchronize(device)
        data_time += time.perf_counter() - before
        train_step(model, optimizer, loss_fn, batch, precision)
    synchronize(device)
    elapsed = time.perf_counter() - start
    return Timing(steps * batch_size / elapsed, data_time / elapsed)


class SeedStyleImages(Dataset):
    """The original project's input path: open each JPEG, squash-resize, ToTensor."""

    def __init__(self, paths: list[Path], side: int) -> None:
        self.paths = paths
        self.transform = transforms.Compose([transforms.Resize((side, side)),
                                             transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB"))


def seed_style_batches(paths: list[Path], side: int, batch_size: int, workers: int,
                       device: torch.device) -> Batches:
    loader = DataLoader(SeedStyleImages(paths, side), batch_size=batch_size, shuffle=True,
                        num_workers=workers, drop_last=True, persistent_workers=workers > 0)
    iterator = iter(loader)

    def next_batch(step: int) -> torch.Tensor:
        nonlocal iterator
        try:
            images = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            images = next(iterator)
        return images.to(device, non_blocking=True)

    return next_batch


def shard_batches(images: torch.Tensor, side: int, batch_size: int,
                  device: torch.device) -> Batches:
    """Exactly the training loop's batches (see featurechanger.training.loop._batch)."""
    order = EpochBatches(len(images), batch_size, seed=0, device=device)
    return lambda step: resize_to(to_float_images(images[order.indices(step)]), side)


def bench_model(name: str, side: int, shards: str, batch_size: int, steps: int, warmup: int,
                rounds: int, loader_workers: list[int], peak: float, device: torch.device,
                precision: str) -> None:
    """Print one row per batch source for model `name`, and the cost of loading the shards."""
    mse = ReconstructionLoss().to(device)
    flops = flops_per_image(name, mse, device, precision)
    started = time.perf_counter()
    shard_set = open_shard_set(shards)
    uint8 = load_split(shard_set, side, "train", device)
    load_s = time.perf_counter() - started
    paths = [shard_set.dataset_root / p for p in shard_set.load(side, split="train").source_paths]
    fixed = torch.rand(batch_size, 3, side, side, device=device)
    sources: dict[str, Batches] = {
        "in-memory tensors": lambda step: fixed,
        "shards": shard_batches(uint8, side, batch_size, device),
    }
    for workers in loader_workers:
        sources[f"seed loader, {workers} wkr"] = seed_style_batches(paths, side, batch_size,
                                                                    workers, device)
    best: dict[str, Timing] = {}
    for _ in range(rounds):  # interleaved rounds, best of each: fair under a shared machine
        for source, batches in sources.items():
            timing = measure(name, mse, batches, batch_size, steps, warmup, device, precision)
            if source not in best or timing.images_per_s > best[source].images_per_s:
                best[source] = timing
    memory_rate = best["in-memory tensors"].images_per_s
    for source, timing in best.items():
        achieved = flops * timing.images_per_s / 1e9
        print(f"{name:6} {source:22} {timing.images_per_s:9,.0f} "
              f"{timing.images_per_s / memory_rate:9.1%} {timing.data_share:9.1%} "
              f"{achieved:8,.1f} {achieved / peak:6.1%}")
    epoch_s = len(uint8) / best["shards"].images_per_s
    print(f"{name:6} {flops / 1e6:,.0f} MFLOP per training image; shard load: {len(uint8):,} "
          f"train images in {load_s:.2f} s ({load_s / (load_s + epoch_s):.1%} of a first "
          f"epoch)\n")


def bench_dfc(batch_size: int, steps: int, warmup: int, rounds: int, device: torch.device,
              precision: str) -> None:
    """What the DFC loss adds to a DCAE training step, in FLOPs and in time."""
    mse = ReconstructionLoss().to(device)
    dfc = ReconstructionLoss(DFCLoss("random")).to(device)  # same cost as pretrained weights
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        dfc.dfc.activations(torch.rand(1, 3, 32, 32, device=device))
    dcae_flops = flops_per_image("dcae", mse, device, precision)
    dfc_flops = flops_per_image("dcae", dfc, device, precision)
    fixed = torch.rand(batch_size, 3, 32, 32, device=device)
    rates = {"mse": 0.0, "dfc": 0.0}
    for _ in range(rounds):
        for kind, loss_fn in (("mse", mse), ("dfc", dfc)):
            timing = measure("dcae", loss_fn, lambda step: fixed, batch_size, steps, warmup,
                             device, precision)
            rates[kind] = max(rates[kind], timing.images_per_s)
    print(f"DFC loss: VGG19 to relu3_1 is {counter.get_total_flops() / 1e9:.3f} GFLOP per 32 px "
          f"image (forward); a DCAE training image costs {dcae_flops / 1e6:,.0f} MFLOP with MSE "
          f"and {dfc_flops / 1e6:,.0f} MFLOP with DFC ({dfc_flops / dcae_flops:.1f}x).")
    print(f"DCAE in memory: {rates['mse']:,.0f} images/s with MSE, {rates['dfc']:,.0f} with DFC: "
          f"a DFC step takes {rates['mse'] / rates['dfc']:.1f}x as long.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True, help="shard set with 32 and 64 px images")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="what the steps compute in, as `featurechanger train --precision`")
    parser.add_argument("--batch-size", type=int, default=TrainOptions().batch_size,
                        help="images per step [default: the training default]")
    parser.add_argument("--steps", type=int, help="timed steps per measurement "
                        "[default: 20 on CPU, 100 on CUDA]")
    parser.add_argument("--rounds", type=int, help="interleaved repetitions; the best of each "
                        "is shown [default: 3 on CPU, 2 on CUDA]")
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to time the seed-style loader with")
    args = parser.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (100 if cuda else 20)
    rounds = args.rounds or (2 if cuda else 3)
    warmup = 20 if cuda else 2
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if cuda else
                                f", {torch.get_num_threads()} threads")
          + f"; batch {args.batch_size}; best of {rounds} rounds of {steps} timed steps "
          f"after {warmup} warm-up steps")
    precision = pick_precision(args.precision, device)
    print(f"training precision: {precision} (--precision {args.precision})")
    peak_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    peak = matmul_peak(device, peak_dtype, 8192 if cuda else 2048, 20 if cuda else 3, rounds)
    print(f"matmul peak ({str(peak_dtype).removeprefix('torch.')}): {peak:,.0f} GFLOP/s\n")
    print(f"{'model':6} {'source':22} {'images/s':>9} {'vs memory':>9} {'data wait':>9} "
          f"{'GFLOP/s':>8} {'% peak':>6}")
    for name, side in (("dcae", 32), ("pgae", 64)):
        bench_model(name, side, args.shards, args.batch_size, steps, warmup, rounds,
                    args.loader_workers, peak, device, precision)
    bench_dfc(args.batch_size, steps, warmup, rounds, device, precision)


if __name__ == "__main__":
    main()
