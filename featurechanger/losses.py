"""Reconstruction losses: plain MSE, and the Deep Feature Consistent loss (Hou et al. 2016).

DFC passes output and target through the first 12 layers of a frozen ImageNet VGG19 (up to
relu3_1) and sums the weighted MSEs at relu1_1, relu2_1 and relu3_1, plus an optional pixel MSE.
The VGG weights are never downloaded: they come from a file the user names, or torchvision's
cache (`$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`); "random" is an explicit choice for
machines without the file (the features are then untrained, and every report says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from featurechanger.errors import ConfigError
from featurechanger.training.options import RANDOM_VGG
from featurechanger.torch_files import load_weights_file

VGG_FILE = "vgg19-dcbb9e9d.pth"
VGG_URL = f"https://download.pytorch.org/models/{VGG_FILE}"
FEATURE_LAYERS = 12  # vgg19.features[:12] ends at relu3_1
DFC_LAYERS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11}  # indices in vgg19.features
MIN_DFC_RESOLUTION = 32  # below this VGG's pools leave too little of the image (8 px -> 2 px)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSSES = ("mse", "dfc")


def default_vgg_path() -> Path:
    """Where torchvision would cache the VGG19 weights ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE


def resolve_vgg_weights(choice: str | None) -> str:
    """The VGG19 weights to use: 'random' or an existing file's absolute path.

    `choice` is a path, 'random', or None for torchvision's cache. Raises ConfigError naming the
    file and where to put it when there is none, so training stops before its first step.
    """
    if choice == RANDOM_VGG:
        return RANDOM_VGG
    path = Path(choice).expanduser() if choice else default_vgg_path()
    if path.is_file():
        return str(path.resolve())
    if choice:
        raise ConfigError(f"VGG19 weights file {choice!r} does not exist. Pass the path of "
                          f"{VGG_FILE}, or --vgg-weights random.")
    raise ConfigError(
        f"--loss dfc needs ImageNet VGG19 weights, and {VGG_FILE} is not in torchvision's cache "
        f"at {str(path)!r}. Download {VGG_URL} on a machine with internet and copy it there "
        f"(or set TORCH_HOME), or pass --vgg-weights PATH. --vgg-weights random runs with "
        f"untrained features, which do not make images sharper."
    )


def vgg19_features(weights: str, seed: int = 0) -> nn.Sequential:
    """VGG19 `features[:12]`, frozen, from a weights file or (weights='random') seeded init.

    The random init is seeded, and drawn without touching the global RNG, so that a resumed run
    rebuilds the same features and training stays repeatable.
    """
    if weights == RANDOM_VGG:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            features = make_layers(cfgs["E"])[:FEATURE_LAYERS]
    else:
        features = make_layers(cfgs["E"])[:FEATURE_LAYERS]
        features.load_state_dict(_features_state(weights))
    for layer in features:
        if isinstance(layer, nn.ReLU):
            layer.inplace = False  # the captured activations must not be overwritten
    features.requires_grad_(False)
    return features.eval()


def _features_state(path: str) -> dict[str, torch.Tensor]:
    """The `features.N.*` tensors of a torchvision VGG19 state dict, renamed to `N.*`."""
    state = load_weights_file(path, "VGG19 weights", f"Pass torchvision's {VGG_FILE}.")
    expected = make_layers(cfgs["E"])[:FEATURE_LAYERS].state_dict()
    renamed = {}
    for key, tensor in expected.items():
        stored = state.get(f"features.{key}") if isinstance(state, dict) else None
        if stored is None or stored.shape != tensor.shape:
            raise ConfigError(f"{path!r} is not a torchvision VGG19 state dict: "
                              f"'features.{key}' of shape {tuple(tensor.shape)} is missing. "
                              f"Pass torchvision's {VGG_FILE}.")
        renamed[key] = stored
    return renamed


class DFCLoss(nn.Module):
    """sum_l w_l * MSE(vgg_l(output), vgg_l(target)) + pixel_weight * MSE(output, target)."""

    def __init__(self, weights: str, layer_weights: Sequence[float] = (1.0, 1.0, 1.0),
                 pixel_weight: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if len(layer_weights) != len(DFC_LAYERS):
            raise ConfigError(f"DFC layer weights {tuple(layer_weights)!r} need one value per "
                              f"layer: {', '.join(DFC_LAYERS)}.")
        self.features = vgg19_features(weights, seed)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.pixel_weight = float(pixel_weight)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "DFCLoss":
        super().train(mode)
        self.features.eval()  # VGG is a fixed measuring instrument, never in training mode
        return self

    def activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        """VGG activations at relu1_1, relu2_1, relu3_1 of images (B, 3, H, W) in [0, 1]."""
        h = (images - self.mean) / self.std
        taken = []
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in DFC_LAYERS.values():
                taken.append(h)
        return taken

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.activations(target)
        loss = sum(weight * F.mse_loss(got, want) for weight, got, want
                   in zip(self.layer_weights, self.activations(output), wanted))
        if self.pixel_weight:
            loss = loss + self.pixel_weight * F.mse_loss(output, target)
        return loss


class ReconstructionLoss(nn.Module):
    """MSE, or DFC at resolutions >= 32 px and MSE below (PGAE's early phases)."""

    def __init__(self, dfc: DFCLoss | None = None) -> None:
        super().__init__()
        self.dfc = dfc

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.dfc is not None and output.shape[-1] >= MIN_DFC_RESOLUTION:
            return self.dfc(output, target)
        return F.mse_loss(output, target)


def build_loss(kind: str, vgg_weights: str | None = None,
               layer_weights: Sequence[float] = (1.0, 1.0, 1.0), pixel_weight: float = 0.0,
               seed: int = 0) -> ReconstructionLoss:
    """The loss `kind` ('mse' or 'dfc'); DFC needs `vgg_weights` from resolve_vgg_weights."""
    if kind == "mse":
        return ReconstructionLoss()
    if kind == "dfc":
        if vgg_weights is None:
            raise ConfigError("--loss dfc needs VGG19 weights; see --vgg-weights.")
        return ReconstructionLoss(DFCLoss(vgg_weights, layer_weights, pixel_weight, seed))
    raise ConfigError(f"Unknown loss {kind!r}. Valid losses: {', '.join(LOSSES)}.")
