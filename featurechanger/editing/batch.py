"""Batch edits and interpolations: what an edit or interpolate job does with one shard of images.

Every output is written to a temporary name and renamed, so a file that exists is complete.
A problem with one image (its photo missing or unreadable) becomes that image's outcome, with
the reason, and never stops the other images of the shard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from featurechanger.data.images import check_aligned_shape, load_aligned_image
from featurechanger.data.options import DEFAULT_CROP
from featurechanger.editing.inputs import check_output_folder
from featurechanger.errors import ConfigError, DataError, FeatureChangerError
from featurechanger.latent.edits import EditSpec, apply_edit, edit_latents, keeps_faint_changes
from featurechanger.latent.encoding import decode_latents, encode_images
from featurechanger.latent.vectors import VectorSet
from featurechanger.render.compose import Removal, check_output_mode, compose
from featurechanger.render.gif import DEFAULT_FRAMES, write_gif
from featurechanger.render.images import write_atomically

# CelebA's aligned photos are 178x218; other sizes are accepted at this aspect ratio, within 2%
# (which covers rounding in resized copies), so that the face sits where the model expects it.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# zlib's fastest level: PNG stays lossless, encoding is ~4x faster than Pillow's default (6),
# which was half of an edit job's time, for files ~11% larger (measured on 178x218 faces).
PNG_COMPRESS_LEVEL = 1


class ShardImages(Protocol):
    """What the edit needs from a shard (featurechanger.data's ShardArrays has it)."""

    images: np.ndarray  # (N, R, R, 3) uint8 at the model's resolution
    image_ids: Sequence[str]
    source_paths: Sequence[str]  # relative to the dataset root
    crop_boxes: np.ndarray  # (N, 4) (left, top, right, bottom) in the original photo


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one input image: the file written, or why there is none."""

    image_id: str
    output_path: Path | None
    error: str | None = None


def output_name(image_id: str, suffix: str = ".png") -> str:
    """The output file of an image: its id with the new suffix ('000001.jpg' -> '000001.png')."""
    return Path(image_id).stem + suffix


def decode_edit(model: torch.nn.Module, images: np.ndarray, direction: np.ndarray,
                strength: float, *, device: torch.device | str = "cpu",
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions decode(z) and edits decode(z + s * direction), each (N, R, R, 3) float."""
    return decode_latent_edit(model, images, lambda z: apply_edit(z, direction, strength),
                              device=device, batch_size=batch_size)


def decode_spec_edit(model: torch.nn.Module, images: np.ndarray, vectors: VectorSet,
                     spec: EditSpec, *, device: torch.device | str = "cpu",
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """decode(z) and decode(z') for the edit `spec` (fixed or adaptive), each (N, R, R, 3)."""
    return decode_latent_edit(model, images, lambda z: edit_latents(z, vectors, spec),
                              device=device, batch_size=batch_size)


def decode_latent_edit(model: torch.nn.Module, images: np.ndarray,
                       edit: Callable[[np.ndarray], np.ndarray], *,
                       device: torch.device | str = "cpu",
                       batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """decode(z) and decode(edit(z)) of images (N, R, R, 3) uint8, each (N, R, R, 3) float."""
    _check_resolution(model, images)
    latents = encode_images(model, images, device=device, batch_size=batch_size)
    return (decode_latents(model, latents, device=device, batch_size=batch_size),
            decode_latents(model, edit(latents), device=device, batch_size=batch_size))


def _check_resolution(model: torch.nn.Module, images: np.ndarray) -> None:
    resolution = model.resolution
    if images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        raise ConfigError(f"The model takes {resolution}x{resolution} images but the shard holds "
                          f"{images.shape[1:3]!r}; use shards built with --size {resolution}.")


def edit_shard(arrays: ShardImages, *, model: torch.nn.Module, vectors: VectorSet,
               spec: EditSpec, dataset_root: Path, out_dir: Path, output: str = "blend",
               removal: Removal | None = None, device: torch.device | str = "cpu",
               batch_size: int = 256) -> list[ImageOutcome]:
    """Edit every image of a shard and write `out_dir/<id>.png` at the photo's full resolution.

    The photos are read from `dataset_root / arrays.source_paths[i]`; `output` and `removal`
    choose the composition (see featurechanger.render.compose).
    """
    check_output_mode(output)
    reconstructions, edits = decode_spec_edit(model, arrays.images, vectors, spec, device=device,
                                              batch_size=batch_size)
    faint_changes = keeps_faint_changes(spec)
    return _write_edits([(image_id, Path(dataset_root) / source, tuple(box), reconstruction, edit,
                          Path(out_dir), output, removal, faint_changes)
                         for image_id, source, box, reconstruction, edit in zip(
                             arrays.image_ids, arrays.source_paths, arrays.crop_boxes,
                             reconstructions, edits)])


def _write_edits(edits: list[tuple]) -> list[ImageOutcome]:
    """`_write_edit(*arguments)` for each entry, in order, on as many threads as torch may use:
    composing and PNG encoding run in numpy, torch and zlib with the GIL released, and one
    thread would leave the other cores idle in a single-process job."""
    threads = min(torch.get_num_threads(), len(edits))
    if threads <= 1:
        return [_write_edit(*arguments) for arguments in edits]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda arguments: _write_edit(*arguments), edits))


def _write_edit(image_id: str, photo_path: Path, crop_box: tuple[int, int, int, int],
                reconstruction: np.ndarray, edit: np.ndarray, out_dir: Path,
                output: str, removal: Removal | None, faint_changes: bool) -> ImageOutcome:
    try:
        photo = read_photo(photo_path)
        check_crop_box(crop_box, photo, photo_path)
        composed = compose(photo, crop_box, reconstruction, edit, output, removal,
                           faint_changes)
        path = write_atomically(out_dir / output_name(image_id), lambda target: Image.fromarray(
            composed).save(target, compress_level=PNG_COMPRESS_LEVEL))
    except (FeatureChangerError, OSError) as error:
        return ImageOutcome(image_id, None, str(error))
    return ImageOutcome(image_id, path)


def read_photo(path: Path) -> np.ndarray:
    """The photo at `path` as (H, W, 3) uint8, or a DataError naming the file."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except FileNotFoundError as error:
        raise DataError(f"Photo {str(path)!r} is missing: restore it there, or, if the dataset "
                        f"moved, shard it again from its new place (`featurechanger data shard "
                        f"NEW_PLACE --out SHARDS`) and edit anew.") from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read photo {str(path)!r}: {error}.") from error


def check_crop_box(crop_box: tuple[int, int, int, int], photo: np.ndarray, path: Path) -> None:
    """A shard's crop box must fit its photo; if not, the photo changed since the shards were
    built."""
    left, top, right, bottom = crop_box
    height, width = photo.shape[:2]
    if left < 0 or top < 0 or right > width or bottom > height:
        raise DataError(f"Photo {str(path)!r} is {width}x{height}, too small for its crop box "
                        f"{crop_box!r}: the photo changed since the shards were built; rebuild "
                        "them.")


def edit_image_folder(folder: Path, *, model: torch.nn.Module, vectors: VectorSet,
                      spec: EditSpec, out_dir: Path, output: str = "blend",
                      removal: Removal | None = None, crop: str | None = None,
                      device: torch.device | str = "cpu",
                      batch_size: int = 256) -> list[ImageOutcome]:
    """Edit every CelebA-aligned photo (.jpg, .jpeg, .png) directly inside `folder` (not in its
    subfolders); the other files are listed as not edited.

    A photo is accepted when its aspect ratio is CelebA's 178:218 (within 2%) and its crop is at
    least the model's resolution; `crop` is the crop the model's shards used (default: the
    shard builder's default). Photos that do not qualify get an outcome that says why.
    """

    check_output_mode(output)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--images {str(folder)!r} is not a folder of face photos.")
    check_output_folder(out_dir, [folder])
    files = sorted(path for path in folder.iterdir()
                   if path.is_file() and not path.name.startswith("."))
    paths = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise DataError(f"No .jpg, .jpeg or .png photos in {str(folder)!r}.")
    paths, outcomes = _one_photo_per_output_name(paths)
    outcomes += [ImageOutcome(path.name, None, "Not a .jpg, .jpeg or .png photo.")
                 for path in files if path.suffix.lower() not in IMAGE_SUFFIXES]
    faint_changes = keeps_faint_changes(spec)
    progress = tqdm(total=len(paths), desc="editing photos", unit="photo")
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        loaded, boxes, ready = [], [], []
        for path in chunk:
            try:
                check_aligned_photo(path, model.resolution)
                small, box = load_aligned_image(path, model.resolution, crop or DEFAULT_CROP)
            except FeatureChangerError as error:
                outcomes.append(ImageOutcome(path.name, None, str(error)))
                continue
            loaded.append(small)
            boxes.append(box)
            ready.append(path)
        if ready:
            reconstructions, edits = decode_spec_edit(model, np.stack(loaded), vectors, spec,
                                                      device=device, batch_size=batch_size)
            outcomes += _write_edits([(path.name, path, box, reconstruction, edit,
                                       Path(out_dir), output, removal, faint_changes)
                                      for path, box, reconstruction, edit in zip(
                                          ready, boxes, reconstructions, edits)])
        progress.update(len(chunk))
    progress.close()
    return outcomes


def _one_photo_per_output_name(paths: list[Path]) -> tuple[list[Path], list[ImageOutcome]]:
    """Photos whose edits would share a file name (x.jpg and x.png both make x.png): the first
    is edited, the others are refused with the reason, so that none overwrites another."""
    taken: dict[str, str] = {}
    kept, refused = [], []
    for path in paths:
        name = output_name(path.name)
        if name in taken:
            refused.append(ImageOutcome(path.name, None, f"Its edit would be {name}, as is the "
                                        f"edit of {taken[name]}; rename one of the two."))
        else:
            taken[name] = path.name
            kept.append(path)
    return kept, refused


def check_aligned_photo(path: Path, resolution: int) -> None:
    """Raise a DataError unless the photo has CelebA's aligned aspect and enough pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as error:
        raise DataError(f"Cannot read photo {str(path)!r}: {error}.") from error
    check_aligned_shape(width, height, path.name)
    if min(width, height) < resolution:
        raise DataError(f"Photo {path.name!r} is {width}x{height}, smaller than the model's "
                        f"{resolution} px; use a photo at least {resolution} px wide.")


def edit_frames(model: torch.nn.Module, images: np.ndarray,
                edit: Callable[[np.ndarray], np.ndarray], frames: int, *,
                device: torch.device | str = "cpu", batch_size: int = 256) -> np.ndarray:
    """(N, T, R, R, 3) float: decode(z + t * (edit(z) - z)) for t from 0 to 1 in T frames."""
    _check_frames(frames)
    _check_resolution(model, images)
    latents = encode_images(model, images, device=device, batch_size=batch_size)  # (N, D)
    moves = edit(latents) - latents  # (N, D)
    steps = np.linspace(0.0, 1.0, frames, dtype=np.float32)  # (T,)
    path = latents[:, None, :] + steps[None, :, None] * moves[:, None, :]  # (N, T, D)
    decoded = decode_latents(model, path.reshape(-1, latents.shape[1]), device=device,
                             batch_size=batch_size)
    return decoded.reshape(len(images), frames, *decoded.shape[1:])


def pair_frames(model: torch.nn.Module, start: np.ndarray, end: np.ndarray, frames: int, *,
                device: torch.device | str = "cpu") -> np.ndarray:
    """(T, R, R, 3) float: decode((1 - t) z_start + t z_end) for t from 0 to 1 in T frames."""
    _check_frames(frames)
    _check_resolution(model, np.stack([start, end]))
    z_start, z_end = encode_images(model, np.stack([start, end]), device=device)
    steps = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
    return decode_latents(model, (1 - steps) * z_start + steps * z_end, device=device)


def _check_frames(frames: int) -> None:
    if frames < 2:
        raise ConfigError(f"An interpolation needs at least 2 frames, got {frames!r}.")


def interpolate_shard(arrays: ShardImages, *, model: torch.nn.Module, vectors: VectorSet,
                      spec: EditSpec, out_dir: Path, frames: int = DEFAULT_FRAMES,
                      device: torch.device | str = "cpu",
                      batch_size: int = 32) -> list[ImageOutcome]:
    """Write `out_dir/<id>.gif` for every image of a shard: the edit growing from 0 to s."""
    outcomes = []
    for start in range(0, len(arrays.images), batch_size):
        chunk = edit_frames(model, arrays.images[start:start + batch_size],
                            lambda z: edit_latents(z, vectors, spec), frames, device=device)
        for image_id, frames_of_image in zip(arrays.image_ids[start:start + batch_size], chunk):
            outcomes.append(_write_gif(image_id, frames_of_image,
                                       Path(out_dir) / output_name(image_id, ".gif")))
    return outcomes


def interpolate_pairs(pairs: Sequence[tuple[str, str]], images: Mapping[str, np.ndarray], *,
                      model: torch.nn.Module, out_dir: Path, frames: int = DEFAULT_FRAMES,
                      device: torch.device | str = "cpu") -> list[ImageOutcome]:
    """Write `out_dir/<a>_to_<b>.gif` for each pair of image ids; `images` maps id -> (R, R, 3)."""
    outcomes = []
    for first, second in pairs:
        name = f"{Path(first).stem}_to_{Path(second).stem}"
        missing = [image_id for image_id in (first, second) if image_id not in images]
        if missing:
            outcomes.append(ImageOutcome(name, None, f"image {missing[0]!r} is not in the data"))
            continue
        sequence = pair_frames(model, images[first], images[second], frames, device=device)
        outcomes.append(_write_gif(name, sequence, Path(out_dir) / f"{name}.gif"))
    return outcomes


def _write_gif(name: str, frames: np.ndarray, path: Path) -> ImageOutcome:
    try:
        return ImageOutcome(name, write_gif(list(frames), path))
    except OSError as error:
        return ImageOutcome(name, None, str(error))
