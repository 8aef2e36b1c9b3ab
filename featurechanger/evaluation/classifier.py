"""A small attribute classifier that judges edits at 64x64, trained on the dataset's labels.

It is trained separately from the autoencoders, with a class-balanced loss (each attribute's
positives weighted by negatives/positives), so that its 0.5 threshold balances the errors on
both classes of rare attributes such as Eyeglasses. Only attributes it recognises with a
balanced accuracy of at least 90% on the validation split are used to judge preservation.

A judge trained on CelebA-like labels learns their correlations: glasses make a face more
likely Male, so removing glasses moves its Male call even when the face is unchanged. Trained
with `decorrelate` attributes, every other attribute's loss is reweighted so that, in the
weighted data, its label is independent of theirs (`label_weights`): that judge has no reason
to read Male off the glasses, and measures what an edit of them does to the rest of the face.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from featurechanger.attributes import ATTRIBUTES, attribute_index
from featurechanger.config import Settings
from featurechanger.data.shards import ShardSet
from featurechanger.data.torchdata import images_to_tensor
from featurechanger.errors import DataError
from featurechanger.render.images import write_atomically
from featurechanger.torch_files import load_weights_file
from featurechanger.training.device import autocast, pick_precision
from featurechanger.training.lr import LearningRate

RESOLUTION = 64
JUDGE_THRESHOLD = 0.9  # validation balanced accuracy an attribute needs to be judged
FORMAT = "featurechanger-classifier"


class AttributeClassifier(nn.Module):
    """Four stride-2 convolution blocks (64 -> 4 px), global average pooling, 40 logits."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        channels = [3, width, 2 * width, 4 * width, 8 * width]
        blocks = []
        for inputs, outputs in zip(channels, channels[1:]):
            blocks += [nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
                       nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
                       nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels[-1], len(ATTRIBUTES))
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, 64, 64) in [0, 1] -> logits (B, 40)."""
        features = self.features(x)  # (B, 8w, 4, 4)
        return self.head(features.mean(dim=(2, 3)))


@dataclass
class Classifier:
    """A trained classifier and what it can judge."""

    model: AttributeClassifier
    balanced_accuracy: dict[str, float]  # on the validation split; NaN where a class is absent
    decorrelated: tuple[str, ...] = ()  # attributes the others were trained not to lean on
    precision: str = "fp32"  # what training computed in (featurechanger.training.device)

    @property
    def judged(self) -> tuple[str, ...]:
        return tuple(name for name in ATTRIBUTES
                     if self.balanced_accuracy[name] >= JUDGE_THRESHOLD)

    @property
    def left_out(self) -> dict[str, float]:
        return {name: accuracy for name, accuracy in self.balanced_accuracy.items()
                if not accuracy >= JUDGE_THRESHOLD}

    @torch.inference_mode()
    def predict(self, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """(N, 40) bool predictions for images (N, 64, 64, 3) uint8."""
        return predict_probabilities(self.model, images, batch_size=batch_size) >= 0.5


@torch.inference_mode()
def predict_probabilities(model: AttributeClassifier, images: np.ndarray, *,
                          batch_size: int = 512) -> np.ndarray:
    """(N, 40) float probabilities for images (N, 64, 64, 3) uint8."""
    if images.shape[1:] != (RESOLUTION, RESOLUTION, 3):
        raise DataError(f"The classifier judges {RESOLUTION}x{RESOLUTION} RGB images; got "
                        f"{images.shape[1:]!r}.")
    model.eval()
    device = next(model.parameters()).device
    chunks = [torch.sigmoid(model(images_to_tensor(images[start:start + batch_size]).to(device)))
              .cpu() for start in range(0, len(images), batch_size)]
    return torch.cat(chunks).numpy()


def balanced_accuracy(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(40,) mean of the true-positive and true-negative rates; NaN where a class is absent."""
    predicted, actual = np.asarray(predictions, dtype=bool), np.asarray(labels, dtype=bool)
    positives, negatives = actual.sum(0), (~actual).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        true_positive = (predicted & actual).sum(0) / positives
        true_negative = (~predicted & ~actual).sum(0) / negatives
    result = (true_positive + true_negative) / 2
    result[(positives == 0) | (negatives == 0)] = np.nan
    return result


def train_classifier(train_images: np.ndarray, train_labels: np.ndarray,
                     val_images: np.ndarray, val_labels: np.ndarray, *, epochs: int = 12,
                     batch_size: int = 128, lr: float = 1e-3, seed: int = 0, width: int = 16,
                     decorrelate: Sequence[str] = (), device: torch.device | str = "cpu",
                     precision: str = "auto") -> Classifier:
    """Train on (N, 64, 64, 3) uint8 images with (N, 40) 0/1 labels; judge on the val split.
    `width`: the first block's channels (doubled at each of the four blocks).
    `decorrelate`: attributes the other attributes' predictions must not lean on.
    `precision`: auto, bf16 or fp32 (featurechanger.training.device.pick_precision)."""
    for name, images in (("training", train_images), ("validation", val_images)):
        if len(images) == 0:
            raise DataError(f"The classifier needs {name} images, and the shard set has none.")
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    model = AttributeClassifier(width).to(device)
    weights = label_weights(train_labels, decorrelate)

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        x = images_to_tensor(train_images[rows]).to(device)
        flip = torch.from_numpy(generator.random(len(rows)) < 0.5).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)  # faces are left-right alike
        y = torch.from_numpy(train_labels[rows].astype(np.float32)).to(device)
        losses = nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction="none")
        return (losses * torch.from_numpy(weights[rows]).to(device)).mean()

    # Annealed: at a constant rate the last steps' jitter (and the batch-norm statistics that
    # follow it) made the judge a lottery; three seeds gave Eyeglasses 0.914 to 0.992 and
    # edit success 57 to 95% on the same edits (docs/CHOOSING-THE-EDIT.md, "A stable judge").
    precision = pick_precision(precision, device)
    train_in_batches(model, batch_loss, len(train_images), epochs=epochs,
                     batch_size=batch_size, lr=lr, generator=generator, desc="classifier",
                     anneal=True, precision=precision)
    accuracy = balanced_accuracy(predict_probabilities(model, val_images) >= 0.5, val_labels)
    return Classifier(model, dict(zip(ATTRIBUTES, map(float, accuracy))), tuple(decorrelate),
                      precision)


def label_weights(labels: np.ndarray, decorrelate: Sequence[str] = ()) -> np.ndarray:
    """(N, 40) loss weights: the class balance of `positive_weight` (negatives 1, positives
    negatives/positives) times, per attribute, the reweighing of Kamiran and Calders (2012):
    a face whose label y falls in group g of the `decorrelate` attributes' values weighs
    P(y) P(g) / P(y, g). The weighted data keeps each group's share but has the attribute
    independent of the groups, without the loss of data that equal groups would cost."""
    decorrelated = [attribute_index(name) for name in decorrelate]
    labels = np.asarray(labels, dtype=bool)
    weights = np.where(labels, positive_weight(labels).numpy(), 1.0).astype(np.float32)
    for column in range(len(ATTRIBUTES)):
        others = [index for index in decorrelated if index != column]
        if not others:
            continue
        target = labels[:, column]
        group = np.unique(labels[:, others], axis=0, return_inverse=True)[1].reshape(-1)
        cell = 2 * group + target  # (group, label) of each face
        label_count = np.where(target, target.sum(), (~target).sum())
        group_count, cell_count = np.bincount(group)[group], np.bincount(cell)[cell]
        weights[:, column] *= label_count * group_count / (len(labels) * cell_count)
    return weights


def train_in_batches(model: nn.Module, batch_loss: Callable[[np.ndarray], torch.Tensor],
                     count: int, *, epochs: int, batch_size: int, lr: float,
                     generator: np.random.Generator, desc: str, anneal: bool = False,
                     precision: str = "fp32") -> None:
    """Adam on `batch_loss(rows)` over `epochs` shuffles of `count` rows, in batches of about
    `batch_size`, with a progress bar; the model is left in training mode. `anneal`: the
    learning rate falls from `lr` to 0 along a half cosine, so that the last steps settle.
    `precision`: 'bf16' computes the losses under bf16 autocast, 'fp32' in full."""
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    per_epoch = math.ceil(count / batch_size)
    rate = LearningRate(lr, "cosine" if anneal else "constant", warmup_steps=0, anneal_start=0,
                        total_steps=epochs * per_epoch)
    progress = tqdm(total=epochs * per_epoch, desc=desc, unit="batch")
    for epoch in range(epochs):
        model.train()
        for batch, rows in enumerate(np.array_split(generator.permutation(count), per_epoch)):
            for group in optimiser.param_groups:
                group["lr"] = rate.at(epoch * per_epoch + batch)
            with autocast(device, precision):
                loss = batch_loss(rows)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            progress.update()
            progress.set_postfix(loss=f"{loss.item():.3f}")
    progress.close()


def positive_weight(labels: np.ndarray) -> torch.Tensor:
    """negatives / positives per attribute (1 where a class is missing): a balanced loss."""
    positives = labels.sum(0).astype(np.float64)
    negatives = len(labels) - positives
    weight = np.where((positives > 0) & (negatives > 0), negatives / np.maximum(positives, 1), 1.0)
    return torch.from_numpy(weight.astype(np.float32))


def save_classifier(path: Path, classifier: Classifier, source: str) -> Path:
    """Write the classifier (weights, width, validation accuracies, data source) atomically."""
    payload = {"format": FORMAT, "width": classifier.model.width, "source": source,
               "state_dict": {k: v.cpu() for k, v in classifier.model.state_dict().items()},
               "balanced_accuracy": classifier.balanced_accuracy,
               "decorrelated": list(classifier.decorrelated),
               "precision": classifier.precision}
    return write_atomically(Path(path), lambda target: torch.save(payload, target))


def load_classifier(path: Path, device: torch.device | str = "cpu") -> Classifier:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No classifier at {str(path)!r}. Train one with `featurechanger "
                        "classifier train --data SHARDS`, or pass --classifier FILE.")
    payload = load_weights_file(path, "an attribute classifier", "Train it again with "
                                "`featurechanger classifier train`, or pass --classifier FILE.")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{str(path)!r} is not a featurechanger attribute classifier.")
    model = AttributeClassifier(payload["width"])
    model.load_state_dict(payload["state_dict"])
    return Classifier(model.to(device).eval(), payload["balanced_accuracy"],
                      tuple(payload.get("decorrelated", ())), payload.get("precision", "fp32"))


def default_classifier_path(settings: Settings, shard_set: ShardSet,
                            decorrelate: Sequence[str] = ()) -> Path:
    """Where `classifier train` keeps the classifier of a shard set (one per dataset and set,
    and per set of decorrelated attributes)."""
    suffix = "".join(f"-without-{name}" for name in sorted(decorrelate))
    return settings.checkpoint_root / "classifiers" / f"{shard_set.label}{suffix}.pt"


def edit_judge_path(settings: Settings, shard_set: ShardSet, edited: Sequence[str]) -> Path:
    """The judge `evaluate` uses by default: the classifier trained not to lean on the edited
    attributes where `classifier train --decorrelate` made one, else the plain classifier."""
    decorrelated = default_classifier_path(settings, shard_set, edited)
    plain = default_classifier_path(settings, shard_set)
    if not decorrelated.is_file() and not plain.is_file():
        flags = "".join(f" --decorrelate {name}" for name in edited)
        raise DataError(f"No classifier to judge this edit: train one with `featurechanger "
                        f"classifier train --data {shard_set.path}{flags}` (one that does not "
                        f"lean on the edited attributes), or pass --classifier FILE.")
    return decorrelated if decorrelated.is_file() else plain


def train_on_shard_set(shard_set: ShardSet, **options: object) -> Classifier:
    """`train_classifier` on the shard set's train split, judged on its val split, at 64 px."""
    shard_set.require_sizes([RESOLUTION], "The classifier")
    train, val = shard_set.load(RESOLUTION, "train"), shard_set.load(RESOLUTION, "val")
    return train_classifier(train.images, train.labels, val.images, val.labels, **options)
