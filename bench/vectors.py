"""Attribute vectors for all 40 attributes: one encoding pass against the seed's sampling.

Both arms read the same shard set with the same model and threads, in one run:
- one pass: `compute_vector_set` encodes the train split once and reduces every attribute's
  positive and negative sums (the project's method);
- seed-style: for each of the 40 attributes, draw N random positives and N random negatives
  (N = 1000 in the seed), read those images from the shards, encode them, and take the mean
  difference: 40 samplings, up to 80,000 encodings.

    python bench/vectors.py --shards SHARDS [--run RUN | --model dcae] [--per-attribute 1000]
                            [--threads 2] [--device cpu]

Without --run, an untrained model of the chosen kind is timed (the encoder's cost does not
depend on its weights). The cosine similarity between the two arms' vectors is printed too, to
show what sampling costs in accuracy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from featurechanger.attributes import ATTRIBUTES
from featurechanger.data.shards import ShardSet, iter_shards, open_shard_set
from featurechanger.latent.encoding import encode_images
from featurechanger.latent.vectors import compute_vector_set
from featurechanger.models import build_model


def seed_style_vectors(model: torch.nn.Module, shard_set: ShardSet, per_attribute: int,
                       seed: int, device: str) -> tuple[dict[str, np.ndarray], int]:
    """40 separate samplings, each reading and encoding its own images.

    Returns the vectors and how many images were encoded."""
    labels = np.concatenate([arrays.labels for _, arrays in
                             iter_shards(shard_set, model.resolution, "train")])
    rng = np.random.default_rng(seed)
    vectors, encoded = {}, 0
    for column, name in enumerate(ATTRIBUTES):
        groups = [np.flatnonzero(labels[:, column] == value) for value in (1, 0)]
        if any(len(group) == 0 for group in groups):
            continue
        means = []
        for group in groups:
            rows = np.sort(rng.choice(group, min(per_attribute, len(group)), replace=False))
            images = _read_rows(shard_set, model.resolution, rows)
            means.append(encode_images(model, images, device=device).mean(0))
            encoded += len(rows)
        vectors[name] = means[0] - means[1]
    return vectors, encoded


def _read_rows(shard_set: ShardSet, size: int, rows: np.ndarray) -> np.ndarray:
    """Images at positions `rows` of the train split, read from the (memory-mapped) shards."""
    parts, start = [], 0
    for _, arrays in iter_shards(shard_set, size, "train"):
        inside = rows[(rows >= start) & (rows < start + len(arrays))] - start
        parts.append(np.asarray(arrays.images[inside]))
        start += len(arrays)
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True, help="shard set folder")
    parser.add_argument("--run", type=int, help="time this run's model (default: untrained)")
    parser.add_argument("--model", choices=["dcae", "pgae", "pca"], default="dcae")
    parser.add_argument("--per-attribute", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.run is not None:
        from featurechanger.config import load_settings
        from featurechanger.training.runs import load_run_model

        model = load_run_model(load_settings(), args.run, args.device)
    else:
        model = build_model(args.model).to(args.device).eval()
    shard_set = open_shard_set(args.shards)
    train_images = shard_set.split_counts()["train"]

    start = time.perf_counter()
    one_pass = compute_vector_set(model, shard_set, device=args.device)
    one_pass_s = time.perf_counter() - start
    start = time.perf_counter()
    sampled, encoded = seed_style_vectors(model, shard_set, args.per_attribute, 0, args.device)
    sampled_s = time.perf_counter() - start

    cosines = [float(np.dot(one_pass.vector(name).values, vector)
                     / (np.linalg.norm(vector) * one_pass.vector(name).norm))
               for name, vector in sampled.items()]
    print(f"model {model.name} at {model.resolution} px, {args.threads} threads, "
          f"device {args.device}, {train_images} train images in {shard_set.num_shards} shards")
    print(f"{'method':<34} {'encoded':>8} {'seconds':>8} {'vectors':>8}")
    print(f"{'one pass, all 40 attributes':<34} {train_images:>8} {one_pass_s:>8.2f} "
          f"{len(one_pass.vectors):>8}")
    print(f"{f'seed: {args.per_attribute}+{args.per_attribute} sampled x 40':<34} {encoded:>8} "
          f"{sampled_s:>8.2f} {len(sampled):>8}")
    print(f"speed-up of the one pass: {sampled_s / one_pass_s:.1f}x")
    print(f"cosine(seed-sampled, one-pass) over {len(cosines)} attributes: median "
          f"{np.median(cosines):.3f}, min {min(cosines):.3f}")


if __name__ == "__main__":
    main()
