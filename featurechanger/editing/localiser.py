"""Where a removed object lies in a photo: a localiser learned from image labels alone.

A latent vector that removes glasses also moves whatever correlates with them in the training
data (eyebrows, skin, sex), so the decoded edit changes more than the glasses. A removal should
change only the object's pixels. The localiser finds them without any pixel labels (weakly
supervised localisation): a small fully convolutional net scores every pixel of a 64 px face,
and the image's score is the mean of its top 5% pixel scores, trained on the attribute's image
labels. To classify, the net must put high scores where the attribute shows. After training,
the connected region of a face's top 5% pixels around the highest one is the object's band
(grown by a model pixel, or four of its own where that is more, and softened by half of that,
like the blend's gates). 5% is about the share of a face crop that glasses cover;
`localiser train --top-share` sets it per attribute.

Measured on a validation set, then on an evaluation set (docs/CHOOSING-THE-EDIT.md, "The
removed object's band"):
decode(z') inside this band and the photo outside removes glasses far more often than the
blend's gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from featurechanger.attributes import attribute_index, canonical_attribute
from featurechanger.data.shards import ShardSet
from featurechanger.data.torchdata import images_to_tensor
from featurechanger.editing.bands import missing_localiser
from featurechanger.errors import ConfigError, DataError
from featurechanger.evaluation.classifier import (balanced_accuracy, positive_weight,
                                                  train_in_batches)
from featurechanger.render.compose import spread, square_max
from featurechanger.render.images import resize, write_atomically
from featurechanger.torch_files import load_weights_file
from featurechanger.training.device import pick_precision

RESOLUTION = 64
TOP_SHARE = 0.05
# The band is grown by a model pixel (the decoder's blur), and by at least this many of the
# localiser's own pixels: its cut, made at RESOLUTION px, misses the objects' soft edges and
# thin parts (grown by one such pixel, a 64 px PGAE's band left glasses on one edit in eight).
# Chosen on two validation sets with the DCAE and the PGAE: docs/CHOOSING-THE-EDIT.md, "How
# far the band is grown".
BAND_GROWTH = 4.0
FORMAT = "featurechanger-localiser"
SETTLE_IMAGES = 2048  # training images that set the batch-norm statistics after training


class LocaliserNet(nn.Module):
    """Five 3x3 convolutions at full resolution (dilations 1, 1, 2, 4: a 33 px view), one logit
    per pixel; an image's logit is the mean of its top `top_share` of pixel logits."""

    def __init__(self, width: int = 32, top_share: float = TOP_SHARE) -> None:
        super().__init__()
        if not 0 < top_share < 1:
            raise ConfigError(f"The top share must lie between 0 and 1, got {top_share!r}.")

        def block(inputs: int, dilation: int) -> list[nn.Module]:
            return [nn.Conv2d(inputs, width, 3, padding=dilation, dilation=dilation),
                    nn.BatchNorm2d(width), nn.ReLU(inplace=True)]

        self.layers = nn.Sequential(*block(3, 1), *block(width, 1), *block(width, 2),
                                    *block(width, 4), nn.Conv2d(width, 1, 3, padding=1))
        self.width, self.top_share = width, top_share

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> pixel logits (B, H, W)."""
        return self.layers(x)[:, 0]

    def image_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) the mean of each image's top `top_share` of pixel logits."""
        pixels = self(x).flatten(1)
        return pixels.topk(_top_count(self.top_share, pixels.shape[1]), dim=1).values.mean(1)


def _top_count(share: float, pixels: int) -> int:
    return max(1, int(share * pixels))


@dataclass
class Localiser:
    """A trained localiser of one attribute, and how well its image score classifies."""

    attribute: str
    net: LocaliserNet
    balanced_accuracy: float  # on the validation split
    precision: str = "fp32"  # what training computed in (featurechanger.training.device)

    @torch.inference_mode()
    def band(self, crop: np.ndarray, model_pixel: float, top_share: float | None = None,
             small: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 1) in [0, 1] over a crop ((h, w, 3) float in [0, 1]): of the crop's top share
        of pixels by logit (the net's, unless `top_share` is given), the connected region
        around the highest, grown by a model pixel or BAND_GROWTH localiser pixels, whichever
        is more, and softened by half of that. `small`: the crop already shrunk to RESOLUTION
        px, where the caller has it."""
        if small is None:
            small = resize(crop, RESOLUTION, RESOLUTION)
        logits = self.net(torch.from_numpy(np.ascontiguousarray(small, dtype=np.float32))
                          .permute(2, 0, 1)[None])[0].numpy()
        share = self.net.top_share if top_share is None else top_share
        cut = np.sort(logits, axis=None)[-_top_count(share, logits.size)]
        found = _region_around_peak(logits >= cut, logits)
        # Upsample the logits rather than the mask, for a smooth edge; outside the region,
        # below the cut.
        upsampled = resize(np.where(found, logits, cut - 1)[..., None], crop.shape[1],
                           crop.shape[0])
        growth = max(model_pixel, BAND_GROWTH * crop.shape[1] / RESOLUTION)
        return spread((upsampled >= cut).astype(np.float32), growth)


def _region_around_peak(mask: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The 8-connected region of `mask` that holds the highest logit: the object is one piece
    (both lenses of glasses and their bridge), and the other top pixels are what merely
    correlates with it, such as a mustache's on faces with glasses (a morphological
    reconstruction from the peak)."""
    region = np.zeros_like(mask)
    region[np.unravel_index(np.argmax(logits), logits.shape)] = True
    while True:
        grown = square_max(region.astype(np.float32), 3).astype(bool) & mask
        if np.array_equal(grown, region):
            return region
        region = grown


def train_localiser(attribute: str, train_images: np.ndarray, train_labels: np.ndarray,
                    val_images: np.ndarray, val_labels: np.ndarray, *, epochs: int = 2,
                    top_share: float = TOP_SHARE, batch_size: int = 64, lr: float = 2e-3,
                    seed: int = 0, device: torch.device | str = "cpu",
                    precision: str = "auto") -> Localiser:
    """Train on (N, 64, 64, 3) uint8 images with (N, 40) 0/1 labels, positives of `attribute`
    weighted by the class ratio (a balanced loss); report balanced accuracy on the val split.
    `top_share`: about the share of a face crop the object covers."""
    attribute = canonical_attribute(attribute)
    column = attribute_index(attribute)
    targets = train_labels[:, column].astype(np.float32)
    for name, labels in (("training", targets), ("validation", val_labels[:, column])):
        if not 0 < labels.sum() < len(labels):
            raise DataError(f"The {attribute} localiser needs {name} images with and without "
                            f"{attribute}; the shard set's {name} split has "
                            f"{int(labels.sum())} of {len(labels)} with it.")
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    net = LocaliserNet(top_share=top_share).to(device)
    loss_function = nn.BCEWithLogitsLoss(pos_weight=positive_weight(targets[:, None])[0]
                                         .to(device))

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        x = images_to_tensor(train_images[rows]).to(device)
        return loss_function(net.image_logits(x), torch.from_numpy(targets[rows]).to(device))

    precision = pick_precision(precision, device)
    train_in_batches(net, batch_loss, len(targets), epochs=epochs, batch_size=batch_size, lr=lr,
                     generator=generator, desc=f"{attribute} localiser", precision=precision)
    _settle_batch_norm(net, train_images[generator.permutation(len(targets))[:SETTLE_IMAGES]])
    predicted = _image_logits(net, val_images) > 0
    accuracy = balanced_accuracy(predicted[:, None], val_labels[:, column:column + 1])[0]
    return Localiser(attribute, net.cpu(), float(accuracy), precision)


@torch.no_grad()
def _settle_batch_norm(net: LocaliserNet, images: np.ndarray, batch_size: int = 256) -> None:
    """Set the batch norms' running statistics to the plain average over `images` under the
    final weights: the running averages made during a short training still mix in early ones,
    and shift every logit at inference."""
    device = next(net.parameters()).device
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average
    net.train()
    for start in range(0, len(images), batch_size):
        net(images_to_tensor(images[start:start + batch_size]).to(device))
    net.eval()


@torch.inference_mode()
def _image_logits(net: LocaliserNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    device = next(net.parameters()).device
    return torch.cat([net.image_logits(images_to_tensor(images[start:start + batch_size])
                                       .to(device)).cpu()
                      for start in range(0, len(images), batch_size)]).numpy()


def train_on_shard_set(shard_set: ShardSet, attribute: str, **options: object) -> Localiser:
    """`train_localiser` on the shard set's 64 px train split, judged on its val split."""
    shard_set.require_sizes([RESOLUTION], "The localiser")
    train, val = shard_set.load(RESOLUTION, "train"), shard_set.load(RESOLUTION, "val")
    return train_localiser(attribute, train.images, train.labels, val.images, val.labels,
                           **options)


def save_localiser(path: Path, localiser: Localiser, source: str) -> Path:
    """Write the localiser (attribute, weights, validation accuracy, data source) atomically."""
    payload = {"format": FORMAT, "attribute": localiser.attribute, "width": localiser.net.width,
               "top_share": localiser.net.top_share, "source": source,
               "balanced_accuracy": localiser.balanced_accuracy, "precision": localiser.precision,
               "state_dict": {k: v.cpu() for k, v in localiser.net.state_dict().items()}}
    return write_atomically(Path(path), lambda target: torch.save(payload, target))


def load_localiser(path: Path, attribute: str) -> Localiser:
    payload = load_payload(Path(path), FORMAT, "localiser", "localises", attribute,
                           missing_localiser(Path(path), attribute))
    net = LocaliserNet(payload["width"], payload["top_share"])
    net.load_state_dict(payload["state_dict"])
    return Localiser(attribute, net.eval(), payload["balanced_accuracy"],
                     payload.get("precision", "fp32"))


def load_payload(path: Path, file_format: str, kind: str, verb: str, attribute: str,
                 missing: DataError) -> dict:
    """The dict saved at `path` as a featurechanger `kind` (localiser, refiner) of
    `attribute`, checked: `missing` if there is no file; a damaged file, another kind of file
    or another attribute's is a DataError that says so."""
    if not path.is_file():
        raise missing
    payload = load_weights_file(path, f"a featurechanger {kind}", "Train it again.")
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise DataError(f"{str(path)!r} is not a featurechanger {kind}.")
    if payload["attribute"] != attribute:
        raise DataError(f"{str(path)!r} {verb} {payload['attribute']}, not {attribute}.")
    return payload
