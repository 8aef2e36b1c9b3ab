"""Decoding one aligned face photo into a small square uint8 array: the crop, draft and resize.

The shard builder decodes every image with `decode_aligned`, and editing a folder of photos uses
`load_aligned_image`, so a photo is always cut and scaled exactly the same way.

Crops (boxes are (left, top, right, bottom) in the original photo's pixels):
- ``center`` (default): the largest square in the middle of the photo; for CelebA's 178x218
  aligned photos that is rows 20..198, all columns. CelebA's alignment puts the eyes near row 111
  and the mouth near row 152, so this square holds the whole face plus the hair, hat and chin
  that many attributes are about, without distorting it. It is what the common
  ``Resize(s) + CenterCrop(s)`` recipe for CelebA does.
- ``face``: the tight 128x128 face square centred on (89, 121) that Karras et al. cut from
  CelebA for progressive GANs (scaled with the photo's width for other sizes). It drops most
  hair, so hair and hat attributes suffer.
- ``squash``: the whole photo resized to a square, as the original project's ``Resize((s, s))``
  did; faces come out 1.22 times wider than they are.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from featurechanger.data.options import CROPS, DEFAULT_CROP
from featurechanger.errors import ConfigError, DataError

ALIGNED_ASPECT = 178 / 218  # CelebA's aligned photos; a photo may be any scale of them
ASPECT_TOLERANCE = 0.02

# Karras et al. (arXiv 1710.10196), dataset_tool.py create_celeba: a 128 px square at (89, 121).
_FACE_WIDTH, _FACE_HEIGHT, _FACE_CX, _FACE_CY, _FACE_SIDE = 178, 218, 89, 121, 128

Box = tuple[int, int, int, int]


def check_crop(crop: str) -> str:
    """Return `crop` if it is a known crop, else raise an error listing the valid ones."""
    if crop not in CROPS:
        raise ConfigError(f"Unknown crop {crop!r}. Valid values are {{{', '.join(CROPS)}}}.")
    return crop


def check_size(size: int) -> int:
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"Image size must be a positive number of pixels, not {size!r}.")
    return size


def crop_box(width: int, height: int, crop: str = DEFAULT_CROP) -> Box:
    """The (left, top, right, bottom) box that `crop` cuts from a width x height photo."""
    check_crop(crop)
    if crop == "squash":
        return (0, 0, width, height)
    if crop == "center":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return (left, top, left + side, top + side)
    scale = width / _FACE_WIDTH
    side = min(round(_FACE_SIDE * scale), width, height)
    left = round(width * _FACE_CX / _FACE_WIDTH - side / 2)
    top = round(height * _FACE_CY / _FACE_HEIGHT - side / 2)
    left, top = min(max(left, 0), width - side), min(max(top, 0), height - side)
    return (left, top, left + side, top + side)


def check_aligned_shape(width: int, height: int, name: str) -> None:
    """Raise a DataError unless the photo has CelebA's aligned aspect (178:218, any scale): the
    crops, and the landmarks and eye bands read from the annotation files, assume it."""
    if abs(width / height / ALIGNED_ASPECT - 1) > ASPECT_TOLERANCE:
        raise DataError(f"Photo {name!r} is {width}x{height}; CelebA-aligned photos are 178x218 "
                        f"(aspect {ALIGNED_ASPECT:.3f}). Align and crop it like CelebA.")


def decode_aligned(data: bytes, size: int, crop: str = DEFAULT_CROP,
                   name: str = "image") -> tuple[np.ndarray, Box]:
    """Decode encoded image bytes into a (size, size, 3) uint8 array and the crop box used.

    JPEGs are decoded at the smallest DCT scale (1/8, 1/4, 1/2 or 1) that still leaves the crop
    at least `size` pixels wide and high, then the crop is resized with Pillow's antialiasing
    bilinear filter. Raises DataError naming `name` when the bytes are not a readable image.
    """
    check_size(size)
    try:
        image = Image.open(io.BytesIO(data))
        check_aligned_shape(image.width, image.height, name)
        box = crop_box(image.width, image.height, crop)
        scale = _draft(image, box, size)
        image = image.convert("RGB")
        scaled_box = tuple(coordinate / scale for coordinate in box)
        resized = image.resize((size, size), Image.Resampling.BILINEAR, box=scaled_box)
        return np.asarray(resized, dtype=np.uint8), box
    except UnidentifiedImageError as error:
        raise DataError(f"Cannot decode {name!r}: not an image file Pillow can read. Replace or "
                        "remove the file.") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot decode {name!r}: {error}. Replace or remove the file.") from error


def cannot_read(path: Path | str, error: OSError) -> str:
    """Why a photo is left out when its file cannot be read (gone, a folder, no permission)."""
    return f"Cannot read {Path(path).name!r}: {error.strerror}. Restore or remove the file."


def _draft(image: Image.Image, box: Box, size: int) -> float:
    """Ask a JPEG decoder for reduced-scale decoding; returns the factor it reduced by (>= 1)."""
    crop_width, crop_height = box[2] - box[0], box[3] - box[1]
    wanted = (-(-image.width * size // crop_width), -(-image.height * size // crop_height))
    original_width = image.width
    drafted = image.draft("RGB", wanted)
    if drafted is None:  # not a JPEG: decoded at full scale
        return 1.0
    return original_width / drafted[1][2]


def load_aligned_image(path: Path | str, size: int,
                       crop: str = DEFAULT_CROP) -> tuple[np.ndarray, Box]:
    """Read a CelebA-aligned photo as a (size, size, 3) uint8 array plus its crop box.

    The same steps as the shard builder, so an image edited from disk matches its shard copy.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read image {str(path)!r}: {error.strerror}.") from error
    return decode_aligned(data, size, crop, name=str(path))
