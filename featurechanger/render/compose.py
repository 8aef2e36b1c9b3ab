"""Full-resolution output: put an edit made at 32 or 64 px back onto the user's photo.

The model saw the photo's crop box shrunk to R x R pixels; it returns the reconstruction
D = decode(z) and the edit E = decode(z'), both R x R. Upsampled to the crop box:

- `decoded`: E itself, pasted into the photo. The attribute changes, but every detail the
  model cannot draw at R px is lost, and the model's reconstruction error comes with it.
- `residual`: photo + (E - D). Full detail everywhere, but a sharp object the model draws
  blurred (glasses frames) is only partly cancelled by a blurred difference: it stays visible.
- `blend` (the default): the photo, with each pixel moved toward E by a share lambda in
  [0, 1] that says how surely it belongs to what the edit changes: photo + lambda * (E -
  photo). Lambda is the product of the answers to two questions, each given by the Wiener
  gain a^2 / (a^2 + n^2), where n is the model's own reconstruction error on this photo (the
  RMS of photo - D over the crop): a difference smaller than n is within what the model gets
  wrong anyway, a larger one is signal.
  1. Does the edit change this area? a = |E - D| at the pixel, spread over one model pixel
     (the decoder cannot place a change more finely than that).
  2. Is this pixel part of the change? a = how far the pixel lies from E in the direction of
     the change (the projection of E - photo on E - D, kept when positive). A pixel of a
     removed glasses frame is far from E in that direction; the skin beside it and an eye
     seen through the lens are not, so they keep their full detail.
  Taking E where both hold removes a sharp object the model draws blurred without a ghost of
  it, and keeps the photo's sharpness everywhere else. Measured against counterfactual twins
  on a validation set, it beat the other candidates (see docs/CHOOSING-THE-EDIT.md).
  An attribute the latent holds faintly, such as a smile, is drawn mostly below the model's
  error, where the gates keep the photo: adding one, the blend also adds (1 - lambda) (E - D),
  the change as `residual` adds it (`faint_changes`; for blond hair the faint changes are sex
  cues, and a removal's would leave a ghost of the object).
  A removal given where the removed object lies takes lambda = that object's band and, inside
  it, E with the detail the decoder cannot draw restored (featurechanger.editing: a localiser
  places the band, a refiner fills it); the photo outside. The vector's side effects on the
  rest of the face (hair, skin, the mouth, sex) are left out, and the object goes whole,
  ghost-free, where the gates would keep parts of it. Chosen on a validation set over the
  gates inside the band, which removed less, and over plain E inside it, whose blurred eyes
  lost other attributes (docs/CHOOSING-THE-EDIT.md: "The removed object's band", "The
  refined band").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from featurechanger.errors import ConfigError
from featurechanger.render.images import gaussian_blur, resize, to_uint8

OUTPUT_MODES = ("blend", "residual", "decoded")
# removal(crop, decoded_edit, model_pixel) -> (share, fill): where removed objects lie in the
# crop, (h, w, 1) in [0, 1], and what goes there, (h, w, 3) (featurechanger.editing.removal).
Removal = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


def check_output_mode(mode: str) -> str:
    if mode not in OUTPUT_MODES:
        raise ConfigError(f"Unknown output {mode!r}. "
                          f"Valid values are {{{', '.join(OUTPUT_MODES)}}}.")
    return mode


def compose(photo: np.ndarray, crop_box: tuple[int, int, int, int], reconstruction: np.ndarray,
            edited: np.ndarray, mode: str = "blend", removal: Removal | None = None,
            faint_changes: bool = False) -> np.ndarray:
    """The edited photo, (H, W, 3) uint8.

    photo: (H, W, 3) uint8, the original; crop_box: (left, top, right, bottom) of the region
    the model saw, in photo pixels (parts outside the photo are ignored); reconstruction,
    edited: (R, R, 3) float in [0, 1], decode(z) and decode(z'); removal: for a removal, where
    the removed objects lie and what fills them (the blend then takes the photo elsewhere);
    faint_changes: the blend also adds the decoder's changes fainter than its error to the
    photo (latent.edits.keeps_faint_changes: the additions made of them, such as a smile).
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
    model_pixel = width / reconstruction.shape[1]
    if mode == "decoded":
        patch = decoded_edit
    elif mode == "blend" and removal is not None:
        share, fill = removal(crop, decoded_edit, model_pixel)
        patch = crop + share * (fill - crop)
    else:
        decoded_base = resize(reconstruction, width, height)[patch_slice]
        if mode == "residual":
            patch = crop + decoded_edit - decoded_base
        else:
            share = blend_share(crop, decoded_base, decoded_edit, model_pixel)
            patch = crop + share * (decoded_edit - crop)
            if faint_changes:  # where the gates keep the photo, add the change as residual does
                patch += (1 - share) * (decoded_edit - decoded_base)
    result = original.copy()
    result[photo_slice] = patch
    return to_uint8(result)


def blend_share(crop: np.ndarray, decoded_base: np.ndarray, decoded_edit: np.ndarray,
                model_pixel: float) -> np.ndarray:
    """(h, w, 1) lambda in [0, 1]: how far each photo pixel moves toward the decoded edit.

    crop: the photo's pixels under the crop box; decoded_base, decoded_edit: D and E upsampled
    to it (all (h, w, 3) floats in [0, 1]); model_pixel: photo pixels per model pixel.
    """
    noise = reconstruction_noise(crop, decoded_base)
    change = decoded_edit - decoded_base  # (h, w, 3)
    length = np.sqrt(np.sum(change**2, axis=2, keepdims=True)) + 1e-8
    along = np.maximum(np.sum((decoded_edit - crop) * change, axis=2, keepdims=True) / length, 0)
    return changed_area(change, noise, model_pixel) * _wiener(along**2 / 3, noise)


def reconstruction_noise(crop: np.ndarray, decoded_base: np.ndarray) -> float:
    """n^2: the mean squared error (per channel) of the upsampled reconstruction on the crop."""
    return max(float(np.mean((crop - decoded_base) ** 2)), 1e-8)


def changed_area(change: np.ndarray, noise: float, model_pixel: float) -> np.ndarray:
    """(h, w, 1) the blend's first question, "does the edit change this area?": the Wiener gain
    of the change's power (per channel, like n^2) against n^2, spread over a model pixel."""
    change_size = np.mean(change**2, axis=2, keepdims=True)
    return spread(_wiener(change_size, noise), model_pixel)


def _wiener(power: np.ndarray, noise: float) -> np.ndarray:
    """The Wiener gain a^2 / (a^2 + n^2) of a signal power a^2 against a noise power n^2."""
    return power / (power + noise)


def spread(weight: np.ndarray, model_pixel: float) -> np.ndarray:
    """Max over a model pixel's neighbourhood, then a smooth edge of half a model pixel."""
    size = max(1, math.ceil(model_pixel)) | 1  # odd window
    return gaussian_blur(square_max(weight, size), sigma=model_pixel / 2)


def square_max(weight: np.ndarray, size: int) -> np.ndarray:
    """Max over a centred `size` x `size` window of an (H, W, ...) array, edges replicated: a
    max pool (grey dilation), in numpy ~20x faster than torch's max_pool2d."""
    return _running_max(_running_max(weight, size, axis=0), size, axis=1)


def _running_max(weight: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Max over a centred window of `size` along `axis`, edges replicated (the same as a max
    pool padded with -inf, since an edge value is in every window that reaches past it)."""
    radius = size // 2
    padding = [(0, 0)] * weight.ndim
    padding[axis] = (radius, radius)
    padded = np.pad(weight, padding, mode="edge")
    length = weight.shape[axis]

    def window(offset: int) -> np.ndarray:
        index = [slice(None)] * weight.ndim
        index[axis] = slice(offset, offset + length)
        return padded[tuple(index)]

    result = window(0).copy()
    for offset in range(1, size):
        np.maximum(result, window(offset), out=result)
    return result


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
