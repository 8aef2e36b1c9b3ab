"""Attribute vectors for all 40 attributes from one encoding pass.

A pass over a split (or over one shard of it, for a distributed job) accumulates `VectorStats`:
per-attribute sums of the latents of positive and negative images, their counts and squared
norms, and the label co-occurrence counts. Partial stats of shards add up; `vectors_from_stats`
reduces the total to one vector per attribute:

- plain (the default): mean(positive latents) - mean(negative latents);
- sampled (`per_attribute=N`, the seed's method): the same difference over N random positives and
  N random negatives per attribute (all of them where fewer exist); the sample is a pure function
  of the seed and the image ids, so shards agree on it without talking to each other;
- conditional (`keep=[...]`): the difference that holds the kept attributes fixed. It is the
  coefficient of the attribute in a least-squares fit of the latents on [1, attribute, kept
  attributes], i.e. the mean difference within groups that share the kept labels. On CelebA,
  wearers of glasses are mostly men, so the plain glasses vector also carries "male"; this one
  compares glasses-wearers with non-wearers of the same sex. It needs only the stats above.

Every vector comes with the counts behind it and the standard error of its length, so that a
vector that is mostly sampling noise (an attribute with few positives) is reported, not hidden.

Each vector also records its linear discriminant, for adaptive edits: w = Sigma^-1 v, where
Sigma is the within-class covariance of the latents (the residual covariance of the same
least-squares fit, so for a conditional vector it is the covariance among faces that share the
kept labels). The score w . z is the best linear evidence of the attribute in a latent (Fisher's
discriminant); the vector records the mean score of its positives and of its negatives and the
within-class spread (standard deviation) of the score. An adaptive edit moves each face along v
until its score lies a margin (counted in spreads) past the other class's mean (see
featurechanger.latent.edits). The mean difference stays the direction of the move: under the
model z = a + v * y + noise it is exactly what changing y changes, whereas moving along w would
also move the latent along directions the classes barely vary in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from featurechanger.attributes import ATTRIBUTE_INDEX, ATTRIBUTES, canonical_attribute, split_code
from featurechanger.data.shards import ShardArrays, ShardSet
from featurechanger.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported where images are encoded: planning a job must not need it
    import torch

NUM_ATTRIBUTES = len(ATTRIBUTES)
# A vector whose standard error is more than this share of its length points mostly at noise.
WEAK_NOISE_RATIO = 0.5


@dataclass(frozen=True)
class VectorPlan:
    """What one vector computation selects from each shard; JSON-able for job parameters.

    split: 'train', 'val', 'test' or 'all'.
    per_attribute: None for every image (plain and conditional vectors), or N for the seed's
        sampling of N positives and N negatives per attribute.
    seed: seeds the sampling.
    positive_cutoff, negative_cutoff: per attribute, the largest sampling key that is selected
        (1.0 selects all); only with per_attribute.
    """

    split: str = "train"
    per_attribute: int | None = None
    seed: int = 0
    positive_cutoff: tuple[float, ...] = ()
    negative_cutoff: tuple[float, ...] = ()

    def to_json(self) -> dict:
        return {"split": self.split, "per_attribute": self.per_attribute, "seed": self.seed,
                "positive_cutoff": list(self.positive_cutoff),
                "negative_cutoff": list(self.negative_cutoff)}

    @classmethod
    def from_json(cls, payload: dict) -> "VectorPlan":
        return cls(split=payload["split"], per_attribute=payload["per_attribute"],
                   seed=payload["seed"], positive_cutoff=tuple(payload["positive_cutoff"]),
                   negative_cutoff=tuple(payload["negative_cutoff"]))


def sampling_keys(image_ids: Sequence[str], seed: int) -> np.ndarray:
    """(N, 40) float64 in [0, 1): an independent uniform key per image and attribute.

    Selecting the N smallest keys draws N images uniformly without replacement; because a key
    depends only on the seed and the image id, every shard computes the same draw.
    """
    base = np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{image_id}".encode(),
                                                    digest_size=8).digest(), "little")
                     for image_id in image_ids], dtype=np.uint64)
    counters = np.arange(1, NUM_ATTRIBUTES + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    mixed = _splitmix64(base[:, None] + counters[None, :])  # (N, 40)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: turns consecutive counters into well-mixed 64-bit values."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def plan_vectors(labels: np.ndarray, image_ids: Sequence[str], *, split: str = "train",
                 per_attribute: int | None = None, seed: int = 0) -> VectorPlan:
    """Plan a computation over a split whose labels (N, 40) and ids are given.

    Without `per_attribute` the plan is just the split (the labels are not needed). With it, the
    cutoffs select min(N, available) positives and negatives of each attribute.
    """
    split_code(split)
    if per_attribute is None:
        return VectorPlan(split=split)
    if per_attribute < 1:
        raise ConfigError(f"--per-attribute must be at least 1, got {per_attribute!r}.")
    keys = sampling_keys(image_ids, seed)
    positive = np.asarray(labels, dtype=bool)
    return VectorPlan(split=split, per_attribute=per_attribute, seed=seed,
                      positive_cutoff=_cutoffs(keys, positive, per_attribute),
                      negative_cutoff=_cutoffs(keys, ~positive, per_attribute))


def _cutoffs(keys: np.ndarray, members: np.ndarray, count: int) -> tuple[float, ...]:
    cutoffs = []
    for column in range(NUM_ATTRIBUTES):
        candidates = keys[members[:, column], column]
        cutoffs.append(1.0 if len(candidates) <= count
                       else float(np.partition(candidates, count - 1)[count - 1]))
    return tuple(cutoffs)


def selection_masks(plan: VectorPlan, labels: np.ndarray, image_ids: Sequence[str],
                    partitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which images of a shard count as positives and negatives of each attribute: (N, 40) bools."""
    code = split_code(plan.split)
    in_split = np.ones(len(labels), dtype=bool) if code is None else np.asarray(partitions) == code
    positive = np.asarray(labels, dtype=bool) & in_split[:, None]
    negative = ~np.asarray(labels, dtype=bool) & in_split[:, None]
    if plan.per_attribute is not None:
        keys = sampling_keys(image_ids, plan.seed)
        positive &= keys <= np.asarray(plan.positive_cutoff)[None, :]
        negative &= keys <= np.asarray(plan.negative_cutoff)[None, :]
    return positive, negative


@dataclass
class VectorStats:
    """Sums over encoded images that every vector is reduced from; stats of shards add up.

    positive_sum, negative_sum: (40, D) sums of the latents of each attribute's positives and
        negatives; positive_count, negative_count: (40,); positive_sq_norm, negative_sq_norm:
        (40,) sums of squared latent norms (for standard errors).
    images: images encoded; latent_sum (D,) and label_cross (40, 40) = Y^T Y over them (what
        conditional vectors need); latent_cross (D, D) = Z^T Z over them (the spread of each
        class along its vector).
    """

    positive_sum: np.ndarray
    negative_sum: np.ndarray
    positive_count: np.ndarray
    negative_count: np.ndarray
    positive_sq_norm: np.ndarray
    negative_sq_norm: np.ndarray
    images: int
    latent_sum: np.ndarray
    sq_norm_sum: float
    label_cross: np.ndarray
    latent_cross: np.ndarray

    @classmethod
    def zeros(cls, dim: int) -> "VectorStats":
        per_attribute = np.zeros(NUM_ATTRIBUTES)
        return cls(np.zeros((NUM_ATTRIBUTES, dim)), np.zeros((NUM_ATTRIBUTES, dim)),
                   per_attribute.copy(), per_attribute.copy(), per_attribute.copy(),
                   per_attribute.copy(), 0, np.zeros(dim), 0.0,
                   np.zeros((NUM_ATTRIBUTES, NUM_ATTRIBUTES)), np.zeros((dim, dim)))

    @property
    def dim(self) -> int:
        return self.latent_sum.shape[0]

    def __add__(self, other: "VectorStats") -> "VectorStats":
        if other.dim != self.dim:
            raise ConfigError(f"Cannot add vector stats of latent size {other.dim} to {self.dim}: "
                              "they come from different models.")
        return VectorStats(**{name: getattr(self, name) + getattr(other, name)
                              for name in self.__dataclass_fields__})

    def save(self, path: Path) -> None:
        """Write to `path` (.npz) through a temporary name, so a reader never sees half a file."""
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, **{name: np.asarray(getattr(self, name))
                               for name in self.__dataclass_fields__})
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> "VectorStats":
        with np.load(path) as arrays:
            values = {name: arrays[name] for name in cls.__dataclass_fields__}
        values["images"] = int(values["images"])
        values["sq_norm_sum"] = float(values["sq_norm_sum"])
        return cls(**values)


def accumulate_stats(latents: np.ndarray, labels: np.ndarray, positive: np.ndarray,
                     negative: np.ndarray) -> VectorStats:
    """Stats of one batch: latents (N, D), labels (N, 40) 0/1, selection masks (N, 40) bool."""
    z = np.asarray(latents, dtype=np.float64)  # (N, D)
    y = np.asarray(labels, dtype=np.float64)  # (N, 40)
    p = np.asarray(positive, dtype=np.float64)
    n = np.asarray(negative, dtype=np.float64)
    sq_norms = np.einsum("nd,nd->n", z, z)  # (N,)
    return VectorStats(
        positive_sum=p.T @ z, negative_sum=n.T @ z,
        positive_count=p.sum(0), negative_count=n.sum(0),
        positive_sq_norm=p.T @ sq_norms, negative_sq_norm=n.T @ sq_norms,
        images=len(z), latent_sum=z.sum(0), sq_norm_sum=float(sq_norms.sum()),
        label_cross=y.T @ y, latent_cross=z.T @ z,
    )


def shard_stats(model: torch.nn.Module, arrays: ShardArrays, plan: VectorPlan, *,
                device: torch.device | str = "cpu", batch_size: int = 256) -> VectorStats:
    """Encode the images of one shard (at the model's resolution) that the plan selects.

    Images no attribute selects (outside the split, or outside every sample) are not encoded.
    """
    from featurechanger.latent.encoding import encode_images

    positive, negative = selection_masks(plan, arrays.labels, arrays.image_ids,
                                         arrays.partitions)
    rows = np.flatnonzero(positive.any(1) | negative.any(1))
    if len(rows) == 0:  # nothing selected: zeros of the right size (one image tells the size)
        return VectorStats.zeros(encode_images(model, arrays.images[:1], device=device).shape[1])
    latents = encode_images(model, arrays.images[rows], device=device, batch_size=batch_size)
    return accumulate_stats(latents, arrays.labels[rows], positive[rows], negative[rows])


def plan_for_shard_set(shard_set: ShardSet, *, split: str = "train",
                       per_attribute: int | None = None, seed: int = 0) -> VectorPlan:
    """`plan_vectors` over a shard set's split; reads labels and ids only, never the images."""
    code = split_code(split)
    if per_attribute is None:
        return VectorPlan(split=split)
    labels, image_ids = [], []
    for index in shards_to_read(shard_set, split):
        arrays = shard_set.shard(index, shard_set.sizes[0])  # images stay memory-mapped, unread
        rows = np.ones(len(arrays), dtype=bool) if code is None else arrays.partitions == code
        labels.append(arrays.labels[rows])
        image_ids += [image_id for image_id, keep in zip(arrays.image_ids, rows) if keep]
    return plan_vectors(np.concatenate(labels), image_ids, split=split,
                        per_attribute=per_attribute, seed=seed)


def shards_to_read(shard_set: ShardSet, split: str) -> list[int]:
    """Indices of the shards that hold images of `split` (the tasks of a vectors job)."""
    return [index for index, info in enumerate(shard_set.shards) if _split_images(info, split)]


def compute_vector_set(model: torch.nn.Module, shard_set: ShardSet, *, split: str = "train",
                       per_attribute: int | None = None, seed: int = 0,
                       keep: Iterable[str] = (), device: torch.device | str = "cpu",
                       batch_size: int = 256) -> VectorSet:
    """Every attribute's vector from one pass over the split, in this process."""
    keep = normalise_keep(keep)
    check_keep(keep, per_attribute)
    plan = plan_for_shard_set(shard_set, split=split, per_attribute=per_attribute, seed=seed)
    indices = shards_to_read(shard_set, split)
    if not indices:
        raise DataError(f"Shard set {str(shard_set.path)!r} has no {split} images to compute "
                        "vectors from.")
    total = None
    with tqdm(total=sum(_split_images(shard_set.shards[i], split) for i in indices),
              desc="encoding", unit="image") as progress:
        for index in indices:
            part = shard_stats(model, shard_set.shard(index, model.resolution), plan,
                               device=device, batch_size=batch_size)
            total = part if total is None else total + part
            progress.update(_split_images(shard_set.shards[index], split))
    return vectors_from_stats(total, plan, keep)


def _split_images(shard_info: dict, split: str) -> int:
    return shard_info["images"] if split == "all" else shard_info["splits"][split]


@dataclass(frozen=True)
class AttributeVector:
    """One attribute's direction in latent space, with the evidence behind it."""

    attribute: str
    values: np.ndarray  # (D,) float32
    positives: int
    negatives: int
    stderr: float  # standard error of the vector (root of the summed per-dimension variances)
    # The linear discriminant w (D,) (None where unknown: sampled sets, and sets computed before
    # it was recorded), the mean score w . z of the positives and of the negatives, and the
    # standard deviation of a score within a class (NaN where unknown).
    positive_projection: float = math.nan
    negative_projection: float = math.nan
    spread: float = math.nan
    discriminant: np.ndarray | None = None

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.values))

    @property
    def noise(self) -> float:
        """Standard error over length: about 1 for an attribute the latents do not show at all."""
        return self.stderr / self.norm if self.norm > 0 else math.inf

    @property
    def weak(self) -> bool:
        return self.noise > WEAK_NOISE_RATIO


@dataclass
class VectorSet:
    """The vectors of one computation, and the attributes that got none (with the reason)."""

    vectors: dict[str, AttributeVector]
    method: str  # "mean" or "sampled"
    keep: tuple[str, ...] = ()
    per_attribute: int | None = None
    seed: int | None = None
    split: str = "train"
    images: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    id: int | None = None  # the SQL record's id once saved

    def vector(self, attribute: str) -> AttributeVector:
        name = canonical_attribute(attribute)
        if name in self.vectors:
            return self.vectors[name]
        reason = self.skipped.get(name, "it was not computed")
        raise ConfigError(f"Vector set {self.id!r} has no vector for {name!r}: {reason}. "
                          "Compute vectors on data with both positives and negatives of it.")


def normalise_keep(keep: Iterable[str]) -> tuple[str, ...]:
    """Canonical, de-duplicated kept attribute names in CelebA order."""
    names = {canonical_attribute(name) for name in keep}
    return tuple(name for name in ATTRIBUTES if name in names)


def check_keep(keep: tuple[str, ...], per_attribute: int | None) -> None:
    """Conditional vectors (--keep) need every image: refuse them with a --per-attribute sample
    (public: a vectors job calls it when it is submitted, not only when its reduce runs)."""
    if keep and per_attribute is not None:
        raise ConfigError(
            "--keep needs every image of the split, but --per-attribute "
            f"{per_attribute!r} samples them (the seed's plain method): drop one of the two."
        )


def vectors_from_stats(stats: VectorStats, plan: VectorPlan, keep: Iterable[str] = ()) -> VectorSet:
    """Reduce stats (the sum over all shards) to one vector per attribute; see the module doc."""
    kept = normalise_keep(keep)
    check_keep(kept, plan.per_attribute)
    vectors, skipped = {}, {}
    for index, name in enumerate(ATTRIBUTES):
        positives, negatives = int(stats.positive_count[index]), int(stats.negative_count[index])
        if positives == 0 or negatives == 0:
            missing = "positives" if positives == 0 else "negatives"
            skipped[name] = f"no {missing} among {stats.images} encoded {plan.split} images"
            continue
        others = [ATTRIBUTE_INDEX[k] for k in kept if k != name]
        gram, moments, sq_total, count = (_conditional_system(stats, index, others) if kept
                                          else _plain_system(stats, index))
        if np.linalg.matrix_rank(gram) < len(gram):
            skipped[name] = (f"within the encoded images it never varies apart from the kept "
                             f"attributes {', '.join(k for k in kept if k != name)}")
            continue
        values, stderr = _second_coefficient(gram, moments, sq_total, count)
        vectors[name] = AttributeVector(name, values.astype(np.float32), positives, negatives,
                                        stderr, *_class_projections(stats, index, values, plan,
                                                                    gram, moments, count))
    return VectorSet(vectors=vectors, method="sampled" if plan.per_attribute else "mean",
                     keep=kept, per_attribute=plan.per_attribute,
                     seed=plan.seed if plan.per_attribute else None, split=plan.split,
                     images=stats.images, skipped=skipped)


def _plain_system(stats: VectorStats, a: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Least squares of z on [1, y_a] over the selected positives and negatives of `a`."""
    positives, negatives = stats.positive_count[a], stats.negative_count[a]
    gram = np.array([[positives + negatives, positives], [positives, positives]])
    moments = np.stack([stats.positive_sum[a] + stats.negative_sum[a], stats.positive_sum[a]])
    sq_total = float(stats.positive_sq_norm[a] + stats.negative_sq_norm[a])
    return gram, moments, sq_total, int(positives + negatives)


def _conditional_system(stats: VectorStats, a: int,
                        kept: list[int]) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Least squares of z on [1, y_a, y_kept...] over every encoded image (plain plan only)."""
    columns = [a, *kept]
    gram = np.empty((len(columns) + 1, len(columns) + 1))
    gram[0, 0] = stats.images
    gram[0, 1:] = gram[1:, 0] = stats.positive_count[columns]
    gram[1:, 1:] = stats.label_cross[np.ix_(columns, columns)]
    moments = np.vstack([stats.latent_sum[None, :], stats.positive_sum[columns]])
    return gram, moments, stats.sq_norm_sum, stats.images


def _second_coefficient(gram: np.ndarray, moments: np.ndarray, sq_total: float,
                        count: int) -> tuple[np.ndarray, float]:
    """The coefficient of design column 1 (the attribute) and its standard error.

    gram: (p, p) = X^T X; moments: (p, D) = X^T Z; sq_total = sum of ||z||^2. The residual sum
    of squares (traced over the D dimensions) is sq_total - <beta, X^T Z>.
    """
    beta = np.linalg.solve(gram, moments)  # (p, D)
    residual = max(sq_total - float(np.sum(beta * moments)), 0.0)
    variance = residual / max(count - len(gram), 1)
    stderr = math.sqrt(variance * float(np.linalg.inv(gram)[1, 1]))
    return beta[1], stderr


def _class_projections(stats: VectorStats, a: int, values: np.ndarray, plan: VectorPlan,
                       gram: np.ndarray, moments: np.ndarray,
                       count: int) -> tuple[float, float, float, np.ndarray | None]:
    """The discriminant w = Sigma^-1 v of attribute `a`, the mean scores w . z of its positives
    and negatives, and the within-class spread of a score (see the module doc).

    Sigma needs Z^T Z over exactly the fitted images, which a sampled plan does not have (each
    attribute samples its own images): all unknown there. Sigma gets a ridge of 1e-3 of its
    mean variance, so that directions the latents never vary in cannot dominate w.
    """
    if plan.per_attribute is not None:
        return math.nan, math.nan, math.nan, None
    beta = np.linalg.solve(gram, moments)  # (p, D), the fit
    residual = stats.latent_cross - beta.T @ moments  # Z^T Z - B^T X^T Z: residual Gram matrix
    covariance = (residual + residual.T) / 2 / max(count - len(gram), 1)
    ridge = 1e-3 * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    discriminant = np.linalg.solve(covariance + ridge * np.eye(len(covariance)), values)
    spread = math.sqrt(max(float(discriminant @ covariance @ discriminant), 0.0))
    positive = float(stats.positive_sum[a] @ discriminant / stats.positive_count[a])
    negative = float(stats.negative_sum[a] @ discriminant / stats.negative_count[a])
    return positive, negative, spread, discriminant.astype(np.float32)
