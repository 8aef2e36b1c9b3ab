"""What better masks could reach with this decoder: removing glasses, judged as `evaluate` judges.

The blend has to guess which photo pixels belong to the glasses. The counterfactual twin knows:
where photo and twin differ (by more than --object-levels on some channel) is the object. This
bench composes the decoded edit onto exactly those pixels (an oracle mask no real edit has)
and compares it with the project's outputs and the twin, on the same faces and classifier:

    FEATURECHANGER_HOME=... .venv/bin/python bench/edit_ceiling.py --run 1 --keep Male \\
        --data /work/fc-data/shards-val6k --twin /work/fc-data/val6k-twin

Arms: blend without a band (the project's blend before the localiser) and decoded, `object
mask + decoded edit` (the oracle mask filled with decode(z')), `object mask + photo fill` (the
oracle mask filled from the photo around it, no model at all), `object mask + two-scale fill`
(the mask's parts narrower than a model pixel, which the decoder cannot draw, filled from the
photo around them, its wider parts such as dark lenses from decode(z')) and the twin (a perfect
edit). For each: success, others kept and Male kept with 95% intervals, and the attributes whose
prediction it flips most often (next to the twin's, the classifier's own correlations), and Male
kept on the faces whose photo the classifier sexes as labelled. If the oracle mask arms miss the
targets too, the decoder's pixels, not the mask, are the limit.

A mask a real edit has: the `band ...` arms use the run's Eyeglasses localiser (`featurechanger
localiser train --data TRAINING_SHARDS --attribute Eyeglasses`) and refiner (`featurechanger
refiner train --run RUN --attribute Eyeglasses`; both skipped with --top-shares '').
For each top share S of the localiser's pixels making the band (the connected region of them
around the highest), `band S x refined` fills the band with the refiner's detailed decode(z')
(the project's blend of a removal, composed by the package), `band S x decoded` with decode(z')
itself, `band S x first gate` only where the blend's first gate opens, and `band S x first gate, noise at model resolution` with the model's error measured at
its own resolution, where the change E - D lives; `band x blend` multiplies the full blend
share by the localiser's own band.
Each arm also gets its mean PSNR to the twin, whole photo and eye band.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def object_mask(photo: np.ndarray, twin: np.ndarray, levels: int) -> np.ndarray:
    """(H, W, 1) float: 1 where photo and twin differ by more than `levels` on some channel."""
    difference = np.abs(photo.astype(np.int16) - twin.astype(np.int16)).max(axis=2)
    return (difference > levels).astype(np.float32)[..., None]


def fill_from_surroundings(photo: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: each masked pixel becomes the Gaussian-weighted mean of the
    unmasked pixels around it (a simple inpainting)."""
    from featurechanger.render.images import gaussian_blur

    known = 1.0 - mask
    weights = np.maximum(gaussian_blur(known, sigma), 1e-6)
    return gaussian_blur(photo * known, sigma) / weights


def opening(mask: np.ndarray, radius: int) -> np.ndarray:
    """Morphological opening by a (2r+1)-pixel square: the parts of the mask at least that wide."""
    from featurechanger.render.compose import square_max

    size = 2 * radius + 1
    return square_max(-square_max(-mask, size), size)  # erode, then dilate


def two_scale_fill(photo: np.ndarray, decoded: np.ndarray, mask: np.ndarray,
                   radius: int) -> np.ndarray:
    """The masked parts narrower than 2r+1 pixels filled from the photo around them, the wider
    ones from `decoded` (uint8, the decoded output)."""
    from featurechanger.render.images import to_uint8

    image = photo.astype(np.float32) / 255.0
    wide = opening(mask, radius)
    thin = mask - wide
    result = image + thin * (fill_from_surroundings(image, mask, sigma=2.0) - image)
    return to_uint8(result + wide * (decoded.astype(np.float32) / 255.0 - result))


def masked(photo: np.ndarray, source: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """The photo with the masked pixels taken from `source` (uint8, e.g. the decoded output),
    or with None filled from the photo around them."""
    from featurechanger.render.images import to_uint8

    image = photo.astype(np.float32) / 255.0
    filling = (fill_from_surroundings(image, mask, sigma=2.0) if source is None
               else source.astype(np.float32) / 255.0)
    return to_uint8(image + mask * (filling - image))


def band_arms(photo: np.ndarray, box: tuple[int, int, int, int], reconstruction: np.ndarray,
              edit: np.ndarray, localiser, refiner,
              top_shares: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The photo composed inside the localiser's band made of each top share of its pixels:
    filled by the refiner (the project's blend of a removal), by decode(z'), by decode(z') where
    the blend's first gate opens, and where that gate with the model's noise measured at its own
    resolution (where the change E - D lives) opens; and at the localiser's own share, the full
    blend share."""
    from featurechanger.render.compose import (blend_share, changed_area, compose,
                                               reconstruction_noise)
    from featurechanger.render.images import resize, to_uint8

    left, top, right, bottom = box
    if left < 0 or top < 0 or right > photo.shape[1] or bottom > photo.shape[0]:
        raise click.ClickException(f"Crop box {box} reaches outside the photo; the band arms "
                                   "need crops inside it (the synthetic faces' are).")
    crop = photo[top:bottom, left:right].astype(np.float32) / 255.0
    base = resize(reconstruction, right - left, bottom - top)
    edited = resize(edit, right - left, bottom - top)
    model_pixel = (right - left) / reconstruction.shape[1]
    noise = reconstruction_noise(crop, base)
    small_noise = reconstruction_noise(resize(crop, *reconstruction.shape[1::-1]),
                                       reconstruction)
    shares, arms = {}, {}
    for top_share in top_shares:
        band = localiser.band(crop, model_pixel, top_share)
        arms[f"band {top_share:g} x refined"] = compose(  # as `featurechanger edit` does
            photo, box, reconstruction, edit, "blend",
            lambda crop, decoded, pixel, band=band: (band, refiner.fill(crop, decoded, band)))
        arms[f"band {top_share:g} x decoded"] = compose(
            photo, box, reconstruction, edit, "blend",
            lambda crop, decoded, pixel, band=band: (band, decoded))
        shares.update({
            f"band {top_share:g} x first gate": changed_area(edited - base, noise, model_pixel)
            * band,
            f"band {top_share:g} x first gate, noise at model resolution":
                changed_area(edited - base, small_noise, model_pixel) * band})
    shares["band x blend"] = (blend_share(crop, base, edited, model_pixel)
                              * localiser.band(crop, model_pixel))
    for name, share in shares.items():
        composed = photo.copy()
        composed[top:bottom, left:right] = to_uint8(crop + share * (edited - crop))
        arms[name] = composed
    return arms


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    error = np.mean((image.astype(np.float32) - truth.astype(np.float32)) ** 2) / 255**2
    return float(10 * np.log10(1 / max(error, 1e-10)))


@click.command()
@click.option("--run", "run_id", type=int, required=True)
@click.option("--keep", multiple=True, help="Use the run's vector set that keeps ATTR.")
@click.option("--data", required=True, help="Shard set of the faces.")
@click.option("--twin", required=True, help="The dataset's twin without glasses.")
@click.option("--limit", type=int, default=None, help="At most this many faces.")
@click.option("--object-levels", type=int, default=16, show_default=True,
              help="Photo-twin difference (0-255) above which a pixel is the object; JPEG "
                   "error at quality 80-95 stays well below it.")
@click.option("--top-shares", default="0.03,0.05,0.08", show_default=True,
              help="Top shares of the localiser's pixels to try as the band ('': no band arms, "
                   "and no localiser or refiner needed).")
def main(run_id: int, keep: tuple[str, ...], data: str, twin: str, limit: int | None,
         object_levels: int, top_shares: str) -> None:
    from featurechanger.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
    from featurechanger.config import load_settings
    from featurechanger.data.shards import open_shard_set
    from featurechanger.editing.bands import load_removal, run_removal_parts
    from featurechanger.editing.batch import decode_spec_edit, read_photo
    from featurechanger.editing.inputs import run_shard_set
    from featurechanger.evaluation.classifier import edit_judge_path, load_classifier
    from featurechanger.evaluation.quality import Scores, judge_view, select_for_edit, summarise
    from featurechanger.evaluation.regions import eye_band
    from featurechanger.latent.edits import EditSpec, edit_amount
    from featurechanger.latent.store import vector_set_for_run
    from featurechanger.render.compose import compose
    from featurechanger.training.runs import load_run_model

    settings = load_settings()
    model = load_run_model(settings, run_id)
    vectors = vector_set_for_run(settings, run_id, None, keep)
    training_shards = run_shard_set(settings, run_id)
    # Every arm at the default amount of a removal composed in its band.
    spec = EditSpec.parse((), ["Eyeglasses"], *edit_amount(None, None, banded_removal=True))
    judge = load_classifier(edit_judge_path(settings, training_shards, spec.remove))
    shard_set = open_shard_set(data)
    arrays = shard_set.load(model.resolution, None)
    rows = select_for_edit(arrays.labels, spec)[:limit]
    arms = ("photo", "blend without a band", "decoded", "object mask + decoded edit",
            "object mask + photo fill", "object mask + two-scale fill", "twin")
    shares = tuple(float(share) for share in top_shares.split(",") if share)
    removal = None
    if shares:
        removal = load_removal(run_removal_parts(settings, run_id, training_shards, spec,
                                                 "blend"), run_id)
        arms += tuple(f"band {share:g} x {rule}" for share in shares for rule in (
            "refined", "decoded", "first gate", "first gate, noise at model resolution")) + (
            "band x blend",)
    views: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    distances: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for start in range(0, len(rows), 256):
        batch = rows[start:start + 256]
        reconstructions, edits = decode_spec_edit(model, arrays.images[batch], vectors, spec)
        for row, reconstruction, edit in zip(batch, reconstructions, edits):
            photo = read_photo(Path(shard_set.dataset_root) / arrays.source_paths[row])
            truth = read_photo(Path(twin) / arrays.source_paths[row])
            box = tuple(int(v) for v in arrays.crop_boxes[row])
            mask = object_mask(photo, truth, object_levels)
            decoded = compose(photo, box, reconstruction, edit, "decoded")
            half_model_pixel = max(1, round((box[2] - box[0]) / model.resolution / 2))
            images = {"photo": photo, "twin": truth, "decoded": decoded,
                      "blend without a band": compose(photo, box, reconstruction, edit,
                                                      "blend"),
                      "object mask + decoded edit": masked(photo, decoded, mask),
                      "object mask + photo fill": masked(photo, None, mask),
                      "object mask + two-scale fill": two_scale_fill(photo, decoded, mask,
                                                                     half_model_pixel)}
            if removal is not None:
                images.update(band_arms(photo, box, reconstruction, edit, *removal.parts[0],
                                        shares))
            left, top, right, bottom = eye_band(arrays.landmarks[row], *photo.shape[1::-1])
            for arm in arms:
                views[arm].append(judge_view(images[arm], box))
                distances[arm].append((psnr(images[arm], truth), psnr(
                    images[arm][top:bottom, left:right], truth[top:bottom, left:right])))
    predictions = {arm: judge.predict(np.stack(views[arm])) for arm in arms}
    male = ATTRIBUTE_INDEX["Male"]
    # Faces whose photo the classifier sexes as labelled: its glasses-male association makes it
    # call some women with glasses male, and a good edit then "flips" Male by correcting it.
    sexed_right = predictions["photo"][:, male] == (arrays.labels[rows, male] == 1)
    print(f"{len(rows)} faces with glasses, run {run_id}, vector set {vectors.id}, "
          f"{spec.describe()}; rates in % with 95% intervals; the classifier sexes "
          f"{100 * sexed_right.mean():.1f}% of the photos as labelled")
    for arm in arms[1:]:
        scores = Scores(predictions={"photo": [predictions["photo"]],
                                      "edit": [predictions[arm]]})
        report = summarise(scores, judge, spec)
        flips = (predictions[arm] != predictions["photo"]).mean(axis=0)
        most = sorted((i for i in range(len(ATTRIBUTES)) if ATTRIBUTES[i] in judge.judged
                       and ATTRIBUTES[i] != "Eyeglasses"), key=lambda i: -flips[i])[:4]
        cells = [f"{key} {100 * report[key]:.1f} [{100 * report[key + '_ci'][0]:.1f}, "
                 f"{100 * report[key + '_ci'][1]:.1f}]"
                 for key in ("success", "preserved", "male_preserved")]
        kept_where_right = (predictions[arm][sexed_right, male]
                            == predictions["photo"][sexed_right, male]).mean()
        cells.append(f"male_preserved where sexed as labelled {100 * kept_where_right:.1f}")
        whole, band = np.mean(distances[arm], axis=0)
        cells.append(f"PSNR to the twin whole / eye band {whole:.2f} / {band:.2f} dB")
        print(f"| {arm} | " + " | ".join(cells) + " | most flipped: "
              + ", ".join(f"{ATTRIBUTES[i]} {100 * flips[i]:.1f}" for i in most) + " |")


if __name__ == "__main__":
    main()
