"""Validation: loss, PSNR and SSIM of a model's reconstructions of a split (and the images
the reconstruction sheets show).

PSNR and SSIM are measured on the outputs rounded to 8 bits, as a person sees them in a saved
PNG (the inputs come from 8-bit images already); the loss is the training loss on raw outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from featurechanger.config import Settings
from featurechanger.data.shards import open_shard_set
from featurechanger.metrics import psnr, ssim, to_8bit
from featurechanger.models import Autoencoder
from featurechanger.training import runs
from featurechanger.training.batches import load_split, resize_to, shard_side, to_float_images
from featurechanger.training.device import autocast, pick_device, recorded_precision
from featurechanger.training.report import vgg_note

EVAL_BATCH = 256


@dataclass(frozen=True)
class Evaluation:
    loss: float
    psnr: float  # dB, mean over images
    ssim: float  # mean over images
    images: int


@torch.no_grad()
def reconstruct(model: Autoencoder, images: torch.Tensor,
                precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, outputs) float (B, 3, R, R) for uint8 images (B, S, S, 3), R = model.resolution,
    computed in `precision` (the run's: validation measures the model as it trains)."""
    inputs = resize_to(to_float_images(images), model.resolution)
    with autocast(inputs.device, precision):
        outputs = model(inputs)
    return inputs, outputs.float()


@torch.no_grad()
def evaluate(model: Autoencoder, images: torch.Tensor, loss_fn: nn.Module, precision: str,
             batch_size: int = EVAL_BATCH) -> Evaluation:
    """Mean loss, PSNR and SSIM over uint8 images (N, S, S, 3), in eval mode; the model's
    train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    loss_sum, psnr_sum, ssim_sum = 0.0, 0.0, 0.0
    for start in range(0, len(images), batch_size):
        inputs, outputs = reconstruct(model, images[start:start + batch_size], precision)
        loss_sum += loss_fn(outputs, inputs).item() * len(inputs)
        shown = to_8bit(outputs)
        psnr_sum += psnr(shown, inputs).sum().item()
        ssim_sum += ssim(shown, inputs).sum().item()
    model.train(was_training)
    count = len(images)
    return Evaluation(loss_sum / count, psnr_sum / count, ssim_sum / count, count)


def evaluate_run(settings: Settings, run_id: int, split: str = "test",
                 device: str = "auto") -> dict[str, Any]:
    """MSE, PSNR and SSIM of run `run_id`'s latest checkpoint on a split of its shard set."""
    run = runs.get_run(settings, run_id)
    target = pick_device(device)
    model = runs.load_run_model(settings, run_id, target)
    data = str(settings.resolve(run.data_path, "data"))
    images = load_split(open_shard_set(data), shard_side(model), split, target)
    result = evaluate(model, images, nn.MSELoss(), recorded_precision(run.train_config, target))
    return {"run_id": run_id, "model": run.model, "split": split, "data": data,
            "note": vgg_note(run),
            "resolution": model.resolution,
            "checkpoint": str(runs.run_checkpoint_path(settings, run)),
            **{("mse" if key == "loss" else key): value for key, value in asdict(result).items()}}
