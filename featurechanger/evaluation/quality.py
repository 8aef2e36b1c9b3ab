"""How good an edit is: the AttGAN/STGAN protocol, and distances to counterfactual twins.

For every evaluated face (one that has each removed attribute and lacks each added one) the
edit is composed at full resolution exactly as `featurechanger edit` writes it, then:

- the attribute classifier judges the photo, the edit and the plain reconstruction (the
  model's decode(z), i.e. strength 0) at 64x64. Success: every edited attribute is predicted
  flipped (on the unedited photo, this rate is the classifier's own error). Preservation:
  the share of the other judged attributes whose prediction on the edit equals the one on
  the photo; Male is also reported on its own, and how often each other attribute flips
  (`flipped`). The same numbers on the reconstruction show what the model alone changes
  (including flips at strength 0), and on the twin what a perfect edit scores (the
  classifier's own ceiling). `male_label_preserved` compares the Male call on the edit with
  the face's Male label instead of the call on the photo: a judge that errs on a share e of
  faces costs the photo-referenced rate about 2e (it may err on the photo or on the edit) and
  the label-referenced one e. The judge should not lean on the edited attributes (see
  evaluation.classifier, `decorrelate`), or it sees a change in what they merely correlate with.
- with a twin dataset (the same faces drawn with the attribute changed, the ground truth), PSNR
  and SSIM of the edit against the twin, over the whole photo and over the band of the eyes,
  next to two references: the photo unchanged ("do nothing") and the photo whose band is
  replaced by what the model's resolution keeps of it (shrunk to R px and enlarged back), which
  is all a blur could achieve.

Rates carry Wilson 95% intervals; per-image preservation and PSNR/SSIM means carry normal ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from featurechanger.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
from featurechanger.errors import ConfigError, DataError
from featurechanger.evaluation import intervals
from featurechanger.evaluation.classifier import RESOLUTION, Classifier
from featurechanger.evaluation.regions import eye_band
from featurechanger.editing.batch import check_crop_box, decode_spec_edit, read_photo
from featurechanger.latent.edits import EditSpec, keeps_faint_changes
from featurechanger.latent.vectors import VectorSet
from featurechanger.metrics import psnr, ssim
from featurechanger.render.compose import Removal, check_output_mode, compose
from featurechanger.render.images import resize, to_uint8

SYNTHETIC_MARKER = "synthetic.json"
SAMPLES = 8  # faces kept for a before/after sheet


@dataclass
class Scores:
    """Per-image results, appended image by image."""

    predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)  # version -> (n, 40)
    labels: list[np.ndarray] = field(default_factory=list)  # the faces' own labels, (n, 40)
    distances: dict[str, list[float]] = field(default_factory=dict)
    samples: list[list[np.ndarray]] = field(default_factory=list)  # photo, edit[, twin]

    def add_distance(self, name: str, value: float) -> None:
        self.distances.setdefault(name, []).append(value)

    def judged(self, version: str) -> np.ndarray:
        """(n, 40) bool predictions on one version: photo, edit, reconstruction or twin."""
        return np.concatenate(self.predictions[version])


def select_for_edit(labels: np.ndarray, spec: EditSpec) -> np.ndarray:
    """Rows whose labels have every removed attribute and none of the added ones."""
    chosen = np.ones(len(labels), dtype=bool)
    for name in spec.remove:
        chosen &= labels[:, ATTRIBUTE_INDEX[name]] == 1
    for name in spec.add:
        chosen &= labels[:, ATTRIBUTE_INDEX[name]] == 0
    return np.flatnonzero(chosen)


def check_twin(dataset_root: Path, twin_root: Path, spec: EditSpec) -> None:
    """The twin must be the same synthetic faces, drawn with the edit's attributes changed."""
    def marker(root: Path) -> dict:
        path = Path(root) / SYNTHETIC_MARKER
        if not path.is_file():
            raise DataError(f"{str(root)!r} has no {SYNTHETIC_MARKER}: only datasets written by "
                            "`featurechanger data synth` have counterfactual twins.")
        return json.loads(path.read_text())

    original, twin = marker(dataset_root), marker(twin_root)
    same = all(original.get(key) == twin.get(key) for key in ("count", "seed"))
    wanted = {**{name: 0 for name in spec.remove}, **{name: 1 for name in spec.add}}
    if not same or twin.get("counterfactual") != wanted:
        flags = " ".join(f"--counterfactual {k}={v}" for k, v in wanted.items())
        raise DataError(
            f"{str(twin_root)!r} is not the twin of {str(dataset_root)!r} for this edit: it "
            f"must come from `featurechanger data synth` with the same --count "
            f"{original.get('count')} and --seed {original.get('seed')}, and {flags}.")


def evaluate_edit(arrays, *, model: torch.nn.Module, vectors: VectorSet, spec: EditSpec,
                  classifier: Classifier, dataset_root: Path, twin_root: Path | None = None,
                  output: str = "blend", removal: Removal | None = None, limit: int | None = None,
                  device: torch.device | str = "cpu",
                  batch_size: int = 256) -> tuple[dict, list[list[np.ndarray]]]:
    """Evaluate `spec` on the faces of `arrays` (ShardArrays at the model's resolution) it fits,
    composed as `featurechanger edit` composes them (`output`, `removal`).

    `limit` caps the faces evaluated (the first that fit). Returns the report as JSON-able
    values (see `summarise`), and for the first few faces their photo, edit and (with a twin)
    twin, for a before/after sheet.
    """
    check_output_mode(output)
    if twin_root is not None:
        check_twin(dataset_root, twin_root, spec)
        if arrays.landmarks is None:
            raise DataError("The eye band needs landmarks, and this shard set has none; rebuild "
                            "the shards from a dataset with a landmark file.")
    rows = select_for_edit(arrays.labels, spec)[:limit]
    if len(rows) == 0:
        raise DataError(f"No face in the evaluated data fits the edit ({spec.describe()}).")
    scores = Scores()
    faint_changes = keeps_faint_changes(spec)
    progress = tqdm(total=len(rows), desc="evaluating", unit="image")
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        reconstructions, edits = decode_spec_edit(model, arrays.images[batch], vectors, spec,
                                                  device=device, batch_size=batch_size)
        views: dict[str, list[np.ndarray]] = {}  # version -> 64 px views of this batch
        for row, reconstruction, edit in zip(batch, reconstructions, edits):
            source = Path(dataset_root) / arrays.source_paths[row]
            photo = read_photo(source)
            box = tuple(int(v) for v in arrays.crop_boxes[row])
            check_crop_box(box, photo, source)
            edited = compose(photo, box, reconstruction, edit, output, removal, faint_changes)
            reconstructed = compose(photo, box, reconstruction, reconstruction, "decoded")
            versions = {"photo": photo, "edit": edited, "reconstruction": reconstructed}
            if twin_root is not None:
                versions["twin"] = read_photo(Path(twin_root) / arrays.source_paths[row])
                _add_distances(scores, photo, edited, versions["twin"], box,
                               arrays.landmarks[row], model.resolution)
            for version, image in versions.items():
                views.setdefault(version, []).append(judge_view(image, box))
            sample = [image for version, image in versions.items() if version != "reconstruction"]
            if len(scores.samples) < SAMPLES:
                scores.samples.append(sample)
            progress.update()
        for version, view in views.items():
            scores.predictions.setdefault(version, []).append(classifier.predict(np.stack(view)))
        scores.labels.append(np.asarray(arrays.labels[batch]) == 1)
    progress.close()
    return summarise(scores, classifier, spec), scores.samples


def judge_view(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The crop box shrunk to the classifier's 64x64, as the shard builder shrinks photos."""
    image = Image.fromarray(photo).resize((RESOLUTION, RESOLUTION), Image.Resampling.BILINEAR,
                                          box=box)
    return np.asarray(image)


def _add_distances(scores: Scores, photo: np.ndarray, edited: np.ndarray, twin: np.ndarray,
                   box: tuple[int, int, int, int], landmarks: np.ndarray, resolution: int) -> None:
    """PSNR and SSIM to the twin, whole photo and eye band, for the edit and both references."""
    if twin.shape != photo.shape:
        raise DataError(f"The twin photo is {twin.shape[1]}x{twin.shape[0]} but the original is "
                        f"{photo.shape[1]}x{photo.shape[0]}; regenerate the twin.")
    left, top, right, bottom = eye_band(landmarks, photo.shape[1], photo.shape[0])
    candidates = {"truth": edited, "do_nothing": photo,
                  "blurred": _band_at_model_resolution(photo, box, (left, top, right, bottom),
                                                       resolution)}
    truth = _tensor(twin)
    for name, image in candidates.items():
        whole = _tensor(image)
        band = (slice(None), slice(None), slice(top, bottom), slice(left, right))
        scores.add_distance(f"{name}_psnr", float(psnr(whole, truth)))
        scores.add_distance(f"{name}_ssim", float(ssim(whole, truth)))
        scores.add_distance(f"band_{name}_psnr", float(psnr(whole[band], truth[band])))
        scores.add_distance(f"band_{name}_ssim", float(ssim(whole[band], truth[band])))


def _band_at_model_resolution(photo: np.ndarray, box: tuple[int, int, int, int],
                              band: tuple[int, int, int, int], resolution: int) -> np.ndarray:
    """The photo with the band replaced by what an R-px image of the crop keeps of it."""
    left, top, right, bottom = box
    crop = photo[top:bottom, left:right].astype(np.float32) / 255.0
    small = resize(crop, resolution, resolution)
    blurred_crop = resize(small, right - left, bottom - top)
    result = photo.copy()
    b_left, b_top, b_right, b_bottom = band
    result[b_top:b_bottom, b_left:b_right] = to_uint8(
        blurred_crop[b_top - top:b_bottom - top, b_left - left:b_right - left])
    return result


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


def summarise(scores: Scores, classifier: Classifier, spec: EditSpec) -> dict:
    """The report: rates with 95% intervals (`<key>_ci`), the judged attributes, distances."""
    photo = scores.judged("photo")
    targets = {**{n: False for n in spec.remove}, **{n: True for n in spec.add}}
    others = [ATTRIBUTE_INDEX[n] for n in classifier.judged if n not in targets]
    if not others:
        raise ConfigError("The classifier judges no attribute besides the edited ones, so "
                          "preservation cannot be measured; train it longer or on more data.")
    male = ATTRIBUTE_INDEX["Male"]
    estimates = {"photo_success": intervals.proportion(_flipped(photo, targets))}
    labels = np.concatenate(scores.labels) if scores.labels else None
    if labels is not None:  # the judge's own error on Male: what a label-referenced rate pays
        estimates["photo_male_label_preserved"] = intervals.proportion(
            photo[:, male] == labels[:, male])
    flips: dict[str, dict[str, float]] = {}
    # The edit, the plain reconstruction (strength 0), and the twin (the true edit: what a
    # perfect edit would score, since the classifier errs too).
    for version, prefix in (("edit", ""), ("reconstruction", "reconstruction_"), ("twin", "twin_")):
        if version not in scores.predictions:
            continue
        judged = scores.judged(version)
        kept = judged[:, others] == photo[:, others]
        estimates[f"{prefix}success"] = intervals.proportion(_flipped(judged, targets))
        estimates[f"{prefix}preserved"] = intervals.mean(kept.mean(1), bounds=(0.0, 1.0))
        estimates[f"{prefix}male_preserved"] = intervals.proportion(
            judged[:, male] == photo[:, male])
        if labels is not None:  # against the label: the judge's own error counts once
            estimates[f"{prefix}male_label_preserved"] = intervals.proportion(
                judged[:, male] == labels[:, male])
        if version != "reconstruction":  # how often each other attribute flips: where
            flips[f"{prefix}flipped"] = {  # preservation is lost
                ATTRIBUTES[column]: round(float(1 - rate), 4)
                for rate, column in zip(kept.mean(0), others)}
    estimates.update({name: intervals.mean(values) for name, values in scores.distances.items()})
    report: dict = {"n": len(photo), "edit": spec.to_json(), "judged": list(classifier.judged),
                    "left_out": classifier.left_out,
                    "male_judged": "Male" in classifier.judged, **flips}
    for name, estimate in estimates.items():
        report[name] = estimate.value
        report[f"{name}_ci"] = [estimate.low, estimate.high]
    return report


def _flipped(predictions: np.ndarray, targets: dict[str, bool]) -> np.ndarray:
    """Per image: every edited attribute is predicted at its target value."""
    hits = [predictions[:, ATTRIBUTE_INDEX[name]] == value for name, value in targets.items()]
    return np.logical_and.reduce(hits)


def _most_flipped(report: dict, count: int = 3) -> str:
    """'Blurry 12.0% (twin 3.1%), ...': the others the edit flips most often."""
    twin = report.get("twin_flipped", {})
    most = sorted(report["flipped"].items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {100 * rate:.1f}%"
                     + (f" (twin {100 * twin[name]:.1f}%)" if name in twin else "")
                     for name, rate in most)


def format_report(report: dict, keys: Sequence[str] | None = None) -> str:
    """Lines 'name: value [low, high]' for a person (rates in %, distances in dB or SSIM)."""
    lines = [f"{report['n']} faces, edit: {EditSpec.from_json(report['edit']).describe()}"]
    if "judge" in report:
        without = ", ".join(report["judge_decorrelated"])
        lines.append(f"  judged by {report['judge']} ("
                     + (f"trained not to lean on {without})" if without else
                        "plain: its other calls may lean on the edited attributes; see "
                        "`featurechanger classifier train --help`, --decorrelate)"))
    if report.get("localisers"):
        lines.append("  composed inside the band of: " + ", ".join(report["localisers"]))
    for name in keys or [k for k in report if f"{k}_ci" in report]:
        low, high = report[f"{name}_ci"]
        percent = name.endswith(("success", "preserved"))
        scale, unit = (100, "%") if percent else (1, " dB" if name.endswith("psnr") else "")
        digits = 1 if percent or name.endswith("psnr") else 3
        lines.append(f"  {name}: {_shown(report[name], scale, digits)}{unit} "
                     f"[{_shown(low, scale, digits)}, {_shown(high, scale, digits)}]")
    if report.get("flipped"):
        lines.append("  most flipped by the edit: " + _most_flipped(report))
    if report["left_out"]:
        lines.append("  left out of preservation (validation balanced accuracy < 90%): "
                     + ", ".join(f"{k} {_shown(v, 1, 2)}" for k, v in report["left_out"].items()))
    return "\n".join(lines)


def _shown(value: float | None, scale: float, digits: int) -> str:
    """A number for a person; 'n/a' where it could not be measured (NaN in the report, null
    once it has been through JSON: one class only, or an interval over a single face)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * scale:.{digits}f}"
