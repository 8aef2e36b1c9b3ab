"""What storing convolution weights channels-last (NHWC) would gain when training on the CPU
in fp32: one training step of each net the project trains, its weights NCHW (as fp32 trains)
against channels-last, side by side in one run. bench/precision.py measures the same in bf16,
where the autoencoders do train channels-last.

    python bench/memory_format.py [--steps 8] [--rounds 3]

Each net runs on random inputs of its training shape and batch size, laid out as the training
paths give them: images are stored (B, H, W, C) and permuted, so they reach the first
convolution channels-last already, and only the weights' layout differs between the arms. Rounds
are interleaved and the best of each is shown. README ("Models and training") says why fp32
keeps NCHW for now.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from featurechanger.editing.localiser import LocaliserNet
from featurechanger.editing.refiner import RefinerNet
from featurechanger.evaluation.classifier import AttributeClassifier
from featurechanger.models import build_model
from featurechanger.training.device import autocast

Loss = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def grown_pgae() -> nn.Module:
    model = build_model("pgae")
    model.set_phase(model.config.final_resolution, 1.0)
    return model


# name -> (the net, its input (B, C, H, W) at its training batch size, a loss of it)
NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], Loss]] = {
    "DCAE (32 px)": (lambda: build_model("dcae"), (32, 3, 32, 32),
                     lambda net, x: (net(x) - x).pow(2).mean()),
    "PGAE (64 px)": (grown_pgae, (32, 3, 64, 64), lambda net, x: (net(x) - x).pow(2).mean()),
    "judge": (AttributeClassifier, (128, 3, 64, 64), lambda net, x: net(x).mean()),
    "localiser": (LocaliserNet, (64, 3, 64, 64), lambda net, x: net.image_logits(x).mean()),
    "refiner": (RefinerNet, (32, 7, 64, 64), lambda net, x: net(x).abs().mean()),
}


def step_seconds(make: Callable[[], nn.Module], shape: tuple[int, ...], loss_of: Loss,
                 channels_last: bool, steps: int, precision: str = "fp32") -> float:
    """Seconds per training step, the loss computed in `precision` (bench/precision.py)."""
    torch.manual_seed(0)
    net = make().train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    batch, channels, height, width = shape
    x = torch.rand(batch, height, width, channels).permute(0, 3, 1, 2)  # strided as the data is
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(2 + steps):  # two warm-up steps
        if step == 2:
            start = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            loss = loss_of(net, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def best_step_seconds(nets: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], Loss]],
                      arms: dict[str, tuple[str, bool]], rounds: int,
                      steps: int) -> dict[tuple[str, str], float]:
    """(net, arm) -> the best seconds per step over `rounds` interleaved rounds; an arm is
    (precision, channels-last weights). Interleaving is fair under a shared machine."""
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for name, (make, shape, loss_of) in nets.items():
            for arm, (precision, channels_last) in arms.items():
                seconds = step_seconds(make, shape, loss_of, channels_last, steps, precision)
                best[name, arm] = min(best.get((name, arm), seconds), seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} threads; best of {args.rounds} rounds of "
          f"{args.steps} training steps")
    best = best_step_seconds(NETS, {"NCHW": ("fp32", False), "NHWC": ("fp32", True)},
                             args.rounds, args.steps)
    print(f"{'net':14} {'batch':>5} {'NCHW ms':>8} {'NHWC ms':>8} {'speed-up':>8}")
    for name, (_, shape, _) in NETS.items():
        nchw, nhwc = best[name, "NCHW"], best[name, "NHWC"]
        print(f"{name:14} {shape[0]:5} {nchw * 1e3:8.1f} {nhwc * 1e3:8.1f} {nchw / nhwc:7.2f}x")


if __name__ == "__main__":
    main()
