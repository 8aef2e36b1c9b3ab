"""Reconstruction quality per image: PSNR and SSIM for images (B, 3, H, W) in [0, 1].

SSIM uses a 7x7 uniform window over each channel (scikit-image's default, which these numbers
match): Wang et al.'s 11x11 Gaussian spans a third of a 32 px image, while 7x7 leaves 26x26
window positions at 32 px and 58x58 at 64 px, so one setting suits both resolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004, for a data range of 1
MIN_MSE = 1e-10  # identical images would give infinite PSNR; this caps it at 100 dB


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / MSE) per image, in dB: (B, 3, H, W) x 2 -> (B,)."""
    mse = (output.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(MIN_MSE))


def ssim(output: torch.Tensor, target: torch.Tensor, window: int = SSIM_WINDOW) -> torch.Tensor:
    """Mean structural similarity per image over its channels: (B, 3, H, W) x 2 -> (B,)."""
    if min(output.shape[-2:]) < window:
        raise ValueError(f"SSIM with a {window}x{window} window needs images of at least that "
                         f"size; got {tuple(output.shape[-2:])}")
    x, y = output.float(), target.float()

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, window, stride=1)  # (B, C, H - window + 1, W - window + 1)

    n = window * window
    unbiased = n / (n - 1)  # sample covariance, as scikit-image
    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = unbiased * (local_mean(x * x) - mean_x**2)
    var_y = unbiased * (local_mean(y * y) - mean_y**2)
    cov_xy = unbiased * (local_mean(x * y) - mean_x * mean_y)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    index = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)


def to_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round images in [0, 1] to the 256 levels a saved PNG holds (still float in [0, 1])."""
    return images.clamp(0.0, 1.0).mul(255.0).round().div(255.0)
