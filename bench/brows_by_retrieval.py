"""Experiment (session 19, not adopted; docs/CHOOSING-THE-EDIT.md, "Brows by retrieval"):
`featurechanger evaluate` of a blended glasses removal with the brows of a glasses-free
training face pasted over each edit.

Each edit's brow strip is replaced by that of the training face nearest in context (the face
around the strip, the rows glasses may cover left out) among those of the sex chosen: the
label (--sex label, an oracle), or the Male call of a classifier on the glasses photo
(--sex FILE, a `classifier train` output). --visible picks, among the 50 nearest, the strip
closest to the photo's own where the edit left the photo. It patches evaluate's internals, so
it is a measurement, not a feature. Run from the data folder, with FEATURECHANGER_HOME set:

  python bench/brows_by_retrieval.py --run 1 --set val6k --train shards20k --sex label
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from featurechanger.attributes import ATTRIBUTE_INDEX
from featurechanger.data.shards import open_shard_set
from featurechanger.editing.batch import read_photo
from featurechanger.evaluation import quality
from featurechanger.evaluation.classifier import load_classifier

# Canonical frame: origin between the pupils, x along the line through them, unit = their
# distance. Regions are (x0, x1, y0, y1) in that unit, y down.
STRIP = (-0.85, 0.85, -0.50, -0.10)  # the brows of both eyes
STRIP_STEP = 1 / 40
CONTEXT = (-1.2, 1.2, -1.3, 1.1)
CONTEXT_STEP = 0.1
HIDDEN_ROWS = (-0.6, 0.45)  # rows glasses may cover: not matched on
FOREHEAD = (-0.85, 0.85, -0.75, -0.55)  # colour reference just above the strip
CANDIDATES = 50
MALE, EYEGLASSES = ATTRIBUTE_INDEX["Male"], ATTRIBUTE_INDEX["Eyeglasses"]


def _frame(landmarks) -> tuple[np.ndarray, float, float, float]:
    left, right = np.asarray(landmarks[0:2], float), np.asarray(landmarks[2:4], float)
    centre, delta = (left + right) / 2, right - left
    angle = math.atan2(delta[1], delta[0])
    return centre, float(np.hypot(*delta)), math.cos(angle), math.sin(angle)


def warp(photo: np.ndarray, landmarks, region, step) -> np.ndarray:
    """The canonical `region` sampled from the photo, (H, W, 3) float32."""
    x0, x1, y0, y1 = region
    (cx, cy), d, cos, sin = _frame(landmarks)
    s = d * step
    data = (s * cos, -s * sin, cx + d * (cos * x0 - sin * y0),
            s * sin, s * cos, cy + d * (sin * x0 + cos * y0))
    size = (round((x1 - x0) / step), round((y1 - y0) / step))
    return np.asarray(Image.fromarray(photo).transform(
        size, Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR), np.float32)


def unwarp(patch: np.ndarray, landmarks, region, step, size) -> np.ndarray:
    """A canonical patch (H, W, C) placed into a photo of `size` (width, height)."""
    x0, _, y0, _ = region
    (cx, cy), d, cos, sin = _frame(landmarks)
    k = 1 / (d * step)
    data = (k * cos, k * sin, -(cos * cx + sin * cy) * k - x0 / step,
            -k * sin, k * cos, (sin * cx - cos * cy) * k - y0 / step)
    return np.stack([np.asarray(Image.fromarray(patch[..., c], mode="F").transform(
        size, Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR))
        for c in range(patch.shape[2])], -1)


def context(photo: np.ndarray, landmarks) -> np.ndarray:
    image = warp(photo, landmarks, CONTEXT, CONTEXT_STEP)
    rows = CONTEXT[2] + (np.arange(image.shape[0]) + 0.5) * CONTEXT_STEP
    return image[(rows < HIDDEN_ROWS[0]) | (rows > HIDDEN_ROWS[1])].ravel() / 255.0


def forehead(photo: np.ndarray, landmarks) -> np.ndarray:
    return warp(photo, landmarks, FOREHEAD, STRIP_STEP).reshape(-1, 3).mean(0)


class Bank:
    """Brow strips, contexts, forehead colours and sexes of glasses-free training faces."""

    def __init__(self, shards: Path) -> None:
        shard_set = open_shard_set(shards)
        train = shard_set.load(32, "train")
        rows = np.flatnonzero(train.labels[:, EYEGLASSES] == 0)
        strips, contexts, foreheads = [], [], []
        for row in tqdm(rows, desc="exemplar bank"):
            photo = read_photo(shard_set.dataset_root / train.source_paths[row])
            landmarks = train.landmarks[row]
            strips.append(warp(photo, landmarks, STRIP, STRIP_STEP))
            contexts.append(context(photo, landmarks))
            foreheads.append(forehead(photo, landmarks))
        self.strips, self.contexts = np.stack(strips), np.stack(contexts)
        self.foreheads, self.male = np.stack(foreheads), train.labels[rows, MALE] == 1

    def choose(self, photo, edited, landmarks, male: bool, visible: bool) -> int:
        distance = ((self.contexts - context(photo, landmarks)) ** 2).sum(1)
        candidates = np.argsort(np.where(self.male == male, distance, np.inf))[:CANDIDATES]
        if not visible:
            return int(candidates[0])
        own = warp(photo, landmarks, STRIP, STRIP_STEP)
        shown = np.abs(own - warp(edited, landmarks, STRIP, STRIP_STEP)).max(-1) < 6
        if shown.sum() < 20:
            return int(candidates[0])
        errors = ((self.strips[candidates] - own)[:, shown] ** 2).mean((1, 2))
        return int(candidates[np.argmin(errors)])

    def paste(self, edited: np.ndarray, landmarks, index: int) -> None:
        """Exemplar `index`'s strip, recoloured to the edit's forehead, feathered over 4 px."""
        strip = self.strips[index] + (forehead(edited, landmarks) - self.foreheads[index])
        alpha = _feather(*strip.shape[:2])
        placed = unwarp(np.concatenate([strip * alpha, alpha], -1).astype(np.float32),
                        landmarks, STRIP, STRIP_STEP, (edited.shape[1], edited.shape[0]))
        out = edited * (1 - placed[..., 3:]) + placed[..., :3]
        edited[...] = np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _feather(height: int, width: int, edge: float = 4) -> np.ndarray:
    y = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5)
    x = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5)
    return (np.clip(y / edge, 0, 1)[:, None] * np.clip(x / edge, 0, 1)[None])[..., None]


def patch_evaluate(bank: Bank, sex: str, visible: bool) -> None:
    """Paste before `evaluate` measures each edit: it passes the edit to _add_distances
    (which needs the twin) before the judge sees it, in the order select_for_edit gives."""
    reader = None if sex == "label" else load_classifier(Path(sex))
    faces = {"labels": None, "next": 0}
    select, add_distances = quality.select_for_edit, quality._add_distances

    def selecting(labels, spec):
        rows = select(labels, spec)
        faces["labels"] = np.asarray(labels)[rows]
        return rows

    def pasting(scores, photo, edited, twin, box, landmarks, resolution):
        label = faces["labels"][faces["next"], MALE] == 1
        faces["next"] += 1
        male = label if reader is None else bool(
            reader.predict(quality.judge_view(photo, box)[None])[0, MALE])
        bank.paste(edited, landmarks, bank.choose(photo, edited, landmarks, male, visible))
        add_distances(scores, photo, edited, twin, box, landmarks, resolution)

    quality.select_for_edit, quality._add_distances = selecting, pasting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--set", required=True, help="NAME: evaluates shards-NAME with NAME-twin")
    parser.add_argument("--train", required=True, help="the run's training shard set")
    parser.add_argument("--sex", default="label", help="'label' or a classifier file")
    parser.add_argument("--visible", action="store_true")
    args = parser.parse_args()
    patch_evaluate(Bank(Path(args.train)), args.sex, args.visible)
    from orchestrator.cli import main as cli

    cli(["evaluate", "--run", args.run, "--remove", "Eyeglasses", "--keep", "Male", "--data",
         f"shards-{args.set}", "--split", "all", "--twin", f"{args.set}-twin", "--json"])


if __name__ == "__main__":
    main()
