"""What goes inside a removed object's band: the decoded edit, with the detail the model lacks.

Inside the band a removal takes decode(z'), the model's own image, which a 32 px decoder draws
blurred: the eyes behind removed glasses come out as smudges, which a judge calls "blurry" and
which lose the cues of sex and age. The refiner restores that detail. A small U-Net at 64 px
takes the photo with the band replaced by the decoded image (plus the decoded image itself and
the band) and returns the photo's view of the band. It is trained on the run's own
reconstructions of training faces WITHOUT the attribute, with the band of the eyes placed from
the landmarks and jittered: it learns to turn this decoder's blur back into a sharp face that
fits the context around the band, and never sees the object it will be used to remove. At edit
time decode(z') (no object) replaces decode(z). A see-through refiner also sees the photo inside
the band, trained with spectacles drawn over it (featurechanger.editing.occluders): its eyes are
sharper, but it lets faint frames through, so it is not the default. An occluded refiner is
trained on reconstructions of faces wearing drawn spectacles, as it is used: it removes more
and keeps Male a little better, but its band is blurrier, and it is not the default either.

Measured on a validation set, then on an evaluation set (docs/CHOOSING-THE-EDIT.md, "The
refined band").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featurechanger.attributes import attribute_index, canonical_attribute
from featurechanger.data.shards import ShardSet
from featurechanger.editing.bands import missing_refiner
from featurechanger.editing.localiser import RESOLUTION, load_payload
from featurechanger.editing.occluders import draw_spectacles
from featurechanger.errors import ConfigError, DataError
from featurechanger.evaluation.classifier import train_in_batches
from featurechanger.evaluation.regions import Box, eye_band
from featurechanger.latent.encoding import decode_latents, encode_images
from featurechanger.render.images import resize, to_uint8, write_atomically
from featurechanger.training.device import pick_precision

# RESOLUTION, the localiser's: a removal shrinks each crop once for both nets.
FORMAT = "featurechanger-refiner"
# Where each attribute's object lies on a face, placed from its landmarks: the refiner learns
# to restore detail in such bands. Validated for glasses only (docs/CHOOSING-THE-EDIT.md,
# "The refined band").
TRAINING_BANDS = {"Eyeglasses": eye_band}
# Each side of a training band moves by a random share in this range of the distance between the
# eyes, outward more than inward, so that the refiner meets bands that fit loosely, as a
# localiser's do.
BAND_JITTER = (-0.2, 0.3)
# The weight of the edge term in the training loss. With L1 on the pixels alone, the judge
# called the refined band blurry on about 53% of validation removals (the twins: 3%); with the
# edge term at weight 1, on about 41%, and more of the other attributes and of Male were kept
# (docs/CHOOSING-THE-EDIT.md, "A sharper refiner").
EDGE_WEIGHT = 1.0


class RefinerNet(nn.Module):
    """A three-level U-Net (64, 32, 16 px) that adds detail to the coarse image it is given.

    Input (B, 7, 64, 64): the photo with the band replaced by the coarse image, the coarse
    image, the band; `see_through` adds the photo itself (B, 10, 64, 64). Output: the coarse
    image plus the predicted detail, (B, 3, 64, 64)."""

    def __init__(self, width: int = 24, see_through: bool = False) -> None:
        super().__init__()

        def conv(inputs: int, outputs: int, dilation: int = 1, stride: int = 1) -> nn.Module:
            return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride=stride, padding=dilation,
                                           dilation=dilation), nn.ReLU(inplace=True))

        w = width
        self.level1 = nn.Sequential(conv(10 if see_through else 7, w), conv(w, w))
        self.level2 = nn.Sequential(conv(w, 2 * w, stride=2), conv(2 * w, 2 * w, dilation=2))
        self.level3 = nn.Sequential(conv(2 * w, 3 * w, stride=2), conv(3 * w, 3 * w, dilation=2),
                                    conv(3 * w, 3 * w, dilation=4))
        self.up2 = nn.Sequential(conv(5 * w, 2 * w), conv(2 * w, 2 * w))
        self.up1 = nn.Sequential(conv(3 * w, w), nn.Conv2d(w, 3, 3, padding=1))
        self.width, self.see_through = width, see_through

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.level1(x)
        second = self.level2(first)
        third = self.level3(second)
        second = self.up2(torch.cat([_double(third), second], 1))
        return x[:, 3:6] + self.up1(torch.cat([_double(second), first], 1))


def _double(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def refiner_input(photo: torch.Tensor, coarse: torch.Tensor, band: torch.Tensor,
                  see_through: bool = False) -> torch.Tensor:
    """(B, 3, H, W), (B, 3, H, W), (B, 1, H, W) -> the net's (B, 7, H, W) input, or with
    `see_through` (B, 10, H, W), the photo itself last."""
    blocks = [photo + band * (coarse - photo), coarse, band] + ([photo] if see_through else [])
    return torch.cat(blocks, 1)


@dataclass
class Refiner:
    """A trained refiner for removing one attribute with one run's model."""

    attribute: str
    net: RefinerNet
    # Mean absolute error (0-1) inside validation bands of faces without the attribute:
    # {"decoded": the decoder's reconstruction, "refined": the refiner's}.
    band_error: dict[str, float]
    occluded: bool = False  # trained on reconstructions of faces wearing drawn spectacles
    precision: str = "fp32"  # what training computed in (featurechanger.training.device)

    @torch.inference_mode()
    def fill(self, crop: np.ndarray, decoded: np.ndarray, band: np.ndarray,
             small: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 3): the crop's band filled from `decoded` (the upsampled decode(z'), crop-
        aligned), with detail; crop and decoded (h, w, 3), band (h, w, 1), floats in [0, 1].
        `small`: the crop already shrunk to RESOLUTION px, where the caller has it."""
        if small is None:
            small = resize(crop, RESOLUTION, RESOLUTION)
        views = [torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
                 for image in (small, resize(decoded, RESOLUTION, RESOLUTION),
                               resize(band, RESOLUTION, RESOLUTION))]
        refined = self.net(refiner_input(*views, self.net.see_through))[0].clamp(0, 1)
        return resize(refined.permute(1, 2, 0).numpy(), crop.shape[1], crop.shape[0])


def train_refiner(model: nn.Module, shard_set: ShardSet, attribute: str, *, epochs: int = 2,
                  batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                  see_through: bool = False, occluded: bool = False,
                  device: torch.device | str = "cpu", precision: str = "auto") -> Refiner:
    """Train on the shard set's train faces without `attribute`, report on its val faces.
    `see_through`: the net also sees the photo inside the band, with spectacles drawn over it
    (featurechanger.editing.occluders), and learns to keep what they leave uncovered.
    `occluded`: the coarse image is the model's reconstruction of the face with spectacles
    drawn on, and the photo around the band shows them too, as at edit time, where the photo's
    glasses may have hidden what the band must show (eyebrows under a rim)."""
    attribute = canonical_attribute(attribute)
    if attribute not in TRAINING_BANDS:
        raise ConfigError(f"The refiner knows where the object lies only for "
                          f"{', '.join(TRAINING_BANDS)}, not {attribute}; remove {attribute} "
                          "with --output residual or decoded.")
    shard_set.require_sizes(sorted({model.resolution, RESOLUTION}),
                            "The refiner (the model's images and its own)")
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    occluding = torch.Generator().manual_seed(seed)
    drawn_per_batch = see_through and not occluded  # occluded views come with theirs drawn
    train = _training_views(model, shard_set, "train", attribute, generator, device,
                            occluding if occluded else None)
    net = RefinerNet(see_through=see_through).to(device)

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        photo, coarse, band = (_floats(view[rows]).to(device)
                               for view in (train.photos, train.coarse, train.bands))
        shown = _floats(train.shown[rows]).to(device) if occluded else photo
        if drawn_per_batch:
            shown = draw_spectacles(photo, train.eyes[rows], occluding)
        refined = net(refiner_input(shown, coarse, band, see_through))
        # Drawn spectacles the model encoded are removed inside the band; outside it the
        # photo stays what it shows, as at edit time.
        target = shown + band * (photo - shown) if occluded else photo
        # L1 inside the band, and a little outside (the net sees the photo there), on the
        # pixels and on their differences: L1 alone left the band blurred (EDGE_WEIGHT).
        weight = band + 0.05
        pixels = _weighted_l1(refined, target, weight)
        return pixels + EDGE_WEIGHT * _edge_loss(refined, target, weight)

    precision = pick_precision(precision, device)
    train_in_batches(net, batch_loss, len(train.photos), epochs=epochs, batch_size=batch_size,
                     lr=lr, generator=generator, desc=f"{attribute} refiner",
                     precision=precision)
    net.eval()
    val = _training_views(model, shard_set, "val", attribute, np.random.default_rng(seed + 1),
                          device, torch.Generator().manual_seed(seed + 1) if occluded else None)
    return Refiner(attribute, net.cpu(), _band_error(net.cpu(), *val, seed=seed + 1,
                                                     draw=drawn_per_batch), occluded,
                   precision)


def _weighted_l1(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| weighted by `weight` (broadcast over channels), normalised by its mean."""
    return ((a - b).abs() * weight).mean() / weight.mean()


def _edge_loss(refined: torch.Tensor, photo: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted L1 between the two images' differences of neighbouring pixels, across and
    down: it charges a blurred edge, which L1 on the pixels lets pass cheaply."""
    return sum(_weighted_l1(refined.diff(dim=dim), photo.diff(dim=dim),
                            weight.narrow(dim, 1, weight.shape[dim] - 1))
               for dim in (2, 3)) / 2


class _Views(NamedTuple):
    """A split's training views, in the order _band_error takes them."""

    photos: torch.Tensor
    shown: torch.Tensor
    coarse: torch.Tensor
    bands: torch.Tensor
    eyes: torch.Tensor


def _training_views(model: nn.Module, shard_set: ShardSet, split: str, attribute: str,
                    generator: np.random.Generator, device: torch.device | str,
                    occluding: torch.Generator | None = None) -> _Views:
    """(photos, shown photos, coarse images, bands, eyes) at 64 px for the split's faces
    without `attribute`: images as (N, C, 64, 64) uint8 (a quarter of the memory of floats:
    CelebA's train split takes 4.6 GB), the coarse image being the model's reconstruction of
    the shown photo as compose upsamples it to the crop box, shrunk to 64 px; eyes (N, 2, 2),
    the pupils' pixels. The shown photos are the photos, or with an `occluding` generator the
    photos with spectacles drawn on (what the model encodes, too)."""
    column = attribute_index(attribute)
    small, large = shard_set.load(model.resolution, split), shard_set.load(RESOLUTION, split)
    without = large.labels[:, column] == 0
    if large.landmarks is None:
        raise DataError(f"The refiner places its training bands from landmarks, and "
                        f"{str(shard_set.path)!r} has none; shard a dataset with landmarks "
                        "(CelebA's list_landmarks_align_celeba, or synthetic faces).")
    if not without.any():
        raise DataError(f"The {attribute} refiner trains on faces without {attribute}, and the "
                        f"{split} split of {str(shard_set.path)!r} has none.")
    boxes = large.crop_boxes[without]
    photos = torch.from_numpy(large.images[without]).permute(0, 3, 1, 2).contiguous()
    eyes = torch.from_numpy(_eyes_in_crops(large.landmarks[without], boxes))
    shown, encoded = photos, small.images[without]
    if occluding is not None:
        shown, encoded = _wearing_spectacles(photos, encoded, eyes, occluding)
    decoded = decode_latents(model, encode_images(model, encoded, device=device), device=device)
    coarse = _as_composed(decoded, boxes)
    bands = to_uint8(_object_bands(TRAINING_BANDS[attribute], large.landmarks[without], boxes,
                                   generator))
    return _Views(photos, shown, torch.from_numpy(coarse).permute(0, 3, 1, 2).contiguous(),
                  torch.from_numpy(bands), eyes)


def _wearing_spectacles(photos: torch.Tensor, small: np.ndarray, eyes: torch.Tensor,
                        occluding: torch.Generator, chunk: int = 512
                        ) -> tuple[torch.Tensor, np.ndarray]:
    """The photos (N, 3, 64, 64) uint8 with spectacles drawn on, and the model's images
    (N, R, R, 3) uint8 with the same spectacles: what drawing them changed, shrunk to R px,
    added to the model's own images, which thus stay as the shard set made them elsewhere."""
    shown, worn = torch.empty_like(photos), small.copy()
    for start in range(0, len(photos), chunk):
        photo = _floats(photos[start:start + chunk])
        drawn = draw_spectacles(photo, eyes[start:start + chunk], occluding)
        shown[start:start + chunk] = torch.from_numpy(to_uint8(drawn.numpy()))
        change = F.interpolate(drawn - photo, size=small.shape[1:3], mode="bicubic",
                               align_corners=False, antialias=True)
        part = small[start:start + chunk].astype(np.float32) / 255
        worn[start:start + chunk] = to_uint8(part + change.permute(0, 2, 3, 1).numpy())
    return shown, worn


def _as_composed(decoded: np.ndarray, boxes: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, 64, 64, 3) uint8: each decoded image upsampled to its crop box as compose does
    (render.images.resize: bicubic), then shrunk to 64 px (antialiased), in batches of crops
    of one size."""
    coarse = np.empty((len(decoded), RESOLUTION, RESOLUTION, 3), np.uint8)
    sizes = boxes[:, 2:4] - boxes[:, 0:2]
    for size in np.unique(sizes, axis=0):
        rows = np.flatnonzero((sizes == size).all(axis=1))
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            images = torch.from_numpy(decoded[part]).permute(0, 3, 1, 2)
            large = F.interpolate(images, size=(int(size[1]), int(size[0])), mode="bicubic",
                                  align_corners=False)
            small = F.interpolate(large, size=(RESOLUTION, RESOLUTION), mode="bicubic",
                                  align_corners=False, antialias=True)
            coarse[part] = to_uint8(small.permute(0, 2, 3, 1).numpy())
    return coarse


def _floats(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255


def _eyes_in_crops(landmarks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 2, 2) float32: each face's pupils (x, y) in its crop at 64 px."""
    corner = boxes[:, None, 0:2].astype(np.float32)
    scale = RESOLUTION / (boxes[:, 2] - boxes[:, 0]).astype(np.float32)
    return ((landmarks[:, 0:4].reshape(-1, 2, 2) - corner) * scale[:, None, None]
            ).astype(np.float32)


def _object_bands(place: Callable[[np.ndarray, int, int], Box], landmarks: np.ndarray,
                  boxes: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """(N, 1, 64, 64) float bands: each face's object band (`place`d from its landmarks) in its
    crop at 64 px, its sides jittered (BAND_JITTER), with an edge softened over a pixel."""
    bands = np.zeros((len(boxes), 1, RESOLUTION, RESOLUTION), np.float32)
    for band, points, box in zip(bands, landmarks, boxes):
        left, top, right, bottom = place(points, 10**6, 10**6)
        scale = RESOLUTION / (box[2] - box[0])
        x0, x1 = (left - box[0]) * scale, (right - box[0]) * scale
        y0, y1 = (top - box[1]) * scale, (bottom - box[1]) * scale
        eyes = np.hypot(points[2] - points[0], points[3] - points[1]) * scale
        out = generator.uniform(*BAND_JITTER, 4) * eyes
        x0, y0, x1, y1 = (np.array([x0, y0, x1, y1]) + out * [-1, -1, 1, 1]).round().astype(int)
        band[0, max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    return F.avg_pool2d(torch.from_numpy(bands), 3, 1, 1, count_include_pad=False).numpy()


@torch.inference_mode()
def _band_error(net: RefinerNet, photos: torch.Tensor, shown: torch.Tensor, coarse: torch.Tensor,
                bands: torch.Tensor, eyes: torch.Tensor, seed: int, draw: bool,
                batch_size: int = 256) -> dict[str, float]:
    """Mean absolute error inside the bands against the photos: the coarse image's and the
    refined one's, the net shown `shown` (with spectacles drawn over it first if `draw`)."""
    errors = {"decoded": 0.0, "refined": 0.0}
    occluding = torch.Generator().manual_seed(seed)
    for start in range(0, len(photos), batch_size):
        photo, seen, rough, band = (_floats(x[start:start + batch_size])
                                    for x in (photos, shown, coarse, bands))
        if draw:
            seen = draw_spectacles(seen, eyes[start:start + batch_size], occluding)
        refined = net(refiner_input(seen, rough, band, net.see_through)).clamp(0, 1)
        for name, image in (("decoded", rough), ("refined", refined)):
            errors[name] += float(((image - photo).abs() * band).sum() / 3)
    area = float(bands.sum()) / 255
    return {name: total / area for name, total in errors.items()}


def save_refiner(path: Path, refiner: Refiner, source: str) -> Path:
    """Write the refiner (attribute, weights, validation errors, data source) atomically."""
    payload = {"format": FORMAT, "attribute": refiner.attribute, "width": refiner.net.width,
               "see_through": refiner.net.see_through, "occluded": refiner.occluded,
               "band_error": refiner.band_error, "source": source,
               "precision": refiner.precision,
               "state_dict": {k: v.cpu() for k, v in refiner.net.state_dict().items()}}
    return write_atomically(Path(path), lambda target: torch.save(payload, target))


def load_refiner(path: Path, attribute: str, run_id: int) -> Refiner:
    payload = load_payload(Path(path), FORMAT, "refiner", "refines", attribute,
                           missing_refiner(Path(path), attribute, run_id))
    net = RefinerNet(payload["width"], payload.get("see_through", False))
    net.load_state_dict(payload["state_dict"])
    return Refiner(attribute, net.eval(), payload["band_error"], payload.get("occluded", False),
                   payload.get("precision", "fp32"))
