"""What bf16 gains when training on the CPU: one training step of each net the project
trains, in fp32 against bf16 autocast (the weights and Adam in fp32), the convolution weights
NCHW or channels-last, side by side in one run.

    python bench/precision.py [--steps 6] [--rounds 2]

Each net runs on random inputs of its training shape and batch size, laid out as the data
reaches it (bench/memory_format.py's nets); the DCAE also with the DFC loss (VGG19 to
relu3_1, random weights: the same cost). Rounds are interleaved and the best of each is shown.
`--precision bf16` trains the autoencoders channels-last and the other nets NCHW, as this
bench chose (featurechanger.training.device.training_layout). The gain needs a CPU that
computes bf16 natively (AMX or AVX-512 bf16); the first line says whether this one does,
which is what `--precision auto` goes by.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from featurechanger.losses import DFCLoss, ReconstructionLoss
from featurechanger.models import build_model
from featurechanger.training.device import cpu_computes_bf16
from memory_format import NETS, best_step_seconds

# precision, channels-last weights (training_layout's choice for the autoencoders in bf16)
ARMS = {"fp32": ("fp32", False), "bf16 NCHW": ("bf16", False),
        "bf16 channels-last": ("bf16", True)}


class DCAEWithDFC(nn.Module):
    """The DCAE and its DFC loss in one module, laid out together as training lays out both."""

    def __init__(self) -> None:
        super().__init__()
        self.model, self.loss = build_model("dcae"), ReconstructionLoss(DFCLoss("random"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss(self.model(x), x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions")
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} threads, native bf16: {cpu_computes_bf16()}; best "
          f"of {args.rounds} rounds of {args.steps} training steps")
    nets = {**NETS, "DCAE + DFC loss": (DCAEWithDFC, (32, 3, 32, 32), lambda net, x: net(x))}
    best = best_step_seconds(nets, ARMS, args.rounds, args.steps)
    print(f"{'net':16} {'batch':>5} {'fp32 ms':>8} {'bf16 NCHW':>10} {'speed-up':>8} "
          f"{'bf16 ch-last':>12} {'speed-up':>8}")
    for name, (_, shape, _) in nets.items():
        fp32, nchw, last = (best[name, arm] for arm in ARMS)
        print(f"{name:16} {shape[0]:5} {fp32 * 1e3:8.1f} {nchw * 1e3:10.1f} {fp32 / nchw:7.2f}x "
              f"{last * 1e3:12.1f} {fp32 / last:7.2f}x")


if __name__ == "__main__":
    main()
