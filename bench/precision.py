"""What bf16 autocast gains when training on the CPU: one training step of each net the
project trains, in fp32 against bf16 autocast (weights and Adam in fp32, as
`--precision bf16` trains), side by side in one run.

    python bench/precision.py [--steps 6] [--rounds 2]

Each net runs on random inputs of its training shape and batch size, laid out as the data
reaches it (bench/memory_format.py's nets); the DCAE also with the DFC loss (VGG19 to
relu3_1, random weights: the same cost). Rounds are interleaved and the best of each is shown.
The gain needs a CPU that computes bf16 natively (AMX or AVX-512 bf16); the first line says
whether this one does, which is what `--precision auto` goes by.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from featurechanger.losses import DFCLoss, ReconstructionLoss
from featurechanger.models import build_model
from featurechanger.training.device import autocast, cpu_computes_bf16
from memory_format import NETS, Loss

CPU = torch.device("cpu")


def dcae_with_dfc() -> tuple[Callable[[], nn.Module], tuple[int, ...], Loss]:
    dfc = ReconstructionLoss(DFCLoss("random"))
    return lambda: build_model("dcae"), (32, 3, 32, 32), lambda net, x: dfc(net(x), x)


def step_seconds(make: Callable[[], nn.Module], shape: tuple[int, ...], loss_of: Loss,
                 precision: str, steps: int) -> float:
    torch.manual_seed(0)
    net = make().train()
    batch, channels, height, width = shape
    x = torch.rand(batch, height, width, channels).permute(0, 3, 1, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(2 + steps):  # two warm-up steps
        if step == 2:
            start = time.perf_counter()
        with autocast(CPU, precision):
            loss = loss_of(net, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions")
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} threads, native bf16: {cpu_computes_bf16()}; best "
          f"of {args.rounds} rounds of {args.steps} training steps")
    nets = {**NETS, "DCAE + DFC loss": dcae_with_dfc()}
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for name, (make, shape, loss_of) in nets.items():
            for precision in ("fp32", "bf16"):
                seconds = step_seconds(make, shape, loss_of, precision, args.steps)
                best[name, precision] = min(best.get((name, precision), seconds), seconds)
    print(f"{'net':16} {'batch':>5} {'fp32 ms':>8} {'bf16 ms':>8} {'speed-up':>8}")
    for name, (_, shape, _) in nets.items():
        fp32, bf16 = best[name, "fp32"], best[name, "bf16"]
        print(f"{name:16} {shape[0]:5} {fp32 * 1e3:8.1f} {bf16 * 1e3:8.1f} {fp32 / bf16:7.2f}x")


if __name__ == "__main__":
    main()
