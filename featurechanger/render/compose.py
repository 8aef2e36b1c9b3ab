"""Full-resolution output: put an edit made at 32 or 64 px back onto the user's photo.

The model saw the photo's crop box shrunk to R x R pixels; it returns the reconstruction
D = decode(z) and the edit E = decode(z'), both R x R. Upsampled to the crop box:

- `decoded`: E itself, pasted into the photo. The attribute changes, but every detail the
  model cannot draw at R px is lost, and the model's reconstruction error comes with it.
- `residual`: photo + (E - D). Full detail everywhere, but a sharp object the model draws
  blurred (glasses frames) is only partly cancelled by a blurred difference: it stays visible.
- `blend` (the default): photo + (E - D) where the edit changes little, E where it changes
  much, with a per-pixel weight w = c^2 / (c^2 + n^2): c is the size of the edit's change at
  that pixel and n the model's own reconstruction error on this photo. This is the Wiener
  gain: the model's pixels are taken where its change stands out from its error, and the
  photo's detail is kept where the change is within what the model gets wrong anyway. The
  weight is spread over one model pixel (the decoder cannot place a change more finely than
  that), so that the sharp edges of a removed object go with it instead of ghosting.
"""

from __future__ import annotations

import math

import numpy as np

from featurechanger.errors import ConfigError
from featurechanger.render.images import gaussian_blur, resize, to_uint8

OUTPUT_MODES = ("blend", "residual", "decoded")


def check_output_mode(mode: str) -> str:
    if mode not in OUTPUT_MODES:
        raise ConfigError(f"Unknown output {mode!r}. Valid values are {{{', '.join(OUTPUT_MODES)}}}.")
    return mode


def compose(photo: np.ndarray, crop_box: tuple[int, int, int, int], reconstruction: np.ndarray,
            edited: np.ndarray, mode: str = "blend") -> np.ndarray:
    """The edited photo, (H, W, 3) uint8.

    photo: (H, W, 3) uint8, the original; crop_box: (left, top, right, bottom) of the region
    the model saw, in photo pixels (parts outside the photo are ignored); reconstruction,
    edited: (R, R, 3) float in [0, 1], decode(z) and decode(z').
    """
    check_output_mode(mode)
    left, top, right, bottom = crop_box
    width, height = right - left, bottom - top
    if width <= 0 or height <= 0:
        raise ConfigError(f"Crop box {crop_box!r} is empty; it must be (left, top, right, bottom).")
    original = photo.astype(np.float32) / 255.0
    window = _photo_window(crop_box, photo.shape)
    if window is None:
        raise ConfigError(f"Crop box {crop_box!r} lies outside the {photo.shape[1]}x"
                          f"{photo.shape[0]} photo.")
    photo_slice, patch_slice = window
    crop = original[photo_slice]
    decoded_edit = resize(edited, width, height)[patch_slice]
    if mode == "decoded":
        patch = decoded_edit
    else:
        decoded_base = resize(reconstruction, width, height)[patch_slice]
        with_difference = crop + decoded_edit - decoded_base
        if mode == "residual":
            patch = with_difference
        else:
            weight = blend_weight(crop, decoded_base, decoded_edit,
                                  model_pixel=width / reconstruction.shape[1])
            patch = weight * decoded_edit + (1.0 - weight) * with_difference
    result = original.copy()
    result[photo_slice] = patch
    return to_uint8(result)


def blend_weight(crop: np.ndarray, decoded_base: np.ndarray, decoded_edit: np.ndarray,
                 model_pixel: float) -> np.ndarray:
    """(h, w, 1) weight of the decoded edit: c^2 / (c^2 + n^2), spread over one model pixel.

    crop: the photo's pixels under the crop box; decoded_base, decoded_edit: D and E upsampled
    to it; model_pixel: photo pixels per model pixel.
    """
    change = np.mean((decoded_edit - decoded_base) ** 2, axis=2, keepdims=True)  # c^2
    error = float(np.mean((crop - decoded_base) ** 2))  # n^2: the model's error on this photo
    weight = change / (change + max(error, 1e-8))
    return _spread(weight, model_pixel)


def _spread(weight: np.ndarray, model_pixel: float) -> np.ndarray:
    """Max over a model pixel's neighbourhood, then a smooth edge of half a model pixel."""
    import torch
    import torch.nn.functional as F

    size = max(1, math.ceil(model_pixel)) | 1  # odd window
    tensor = torch.from_numpy(np.ascontiguousarray(weight)).permute(2, 0, 1)[None]
    grown = F.max_pool2d(tensor, size, stride=1, padding=size // 2)[0].permute(1, 2, 0).numpy()
    return gaussian_blur(grown, sigma=model_pixel / 2)


def _photo_window(crop_box: tuple[int, int, int, int],
                  shape: tuple[int, ...]) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Slices of the photo and of the crop-sized patch where the two overlap."""
    left, top, right, bottom = crop_box
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(right, shape[1]), min(bottom, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return ((slice(y0, y1), slice(x0, x1)),
            (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)))
