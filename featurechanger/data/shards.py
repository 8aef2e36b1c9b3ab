"""Shard sets: every image of a dataset decoded once into fixed-size uint8 arrays per resolution.

On disk (OUT is the shard set's folder)::

    OUT/manifest.json            dataset root and fingerprint, sizes, crop, shards, excluded images
    OUT/shard-00000/index.json   the shard's key, image ids, source paths, corrupt images
    OUT/shard-00000/images-32.npy  (N, 32, 32, 3) uint8, one file per resolution
    OUT/shard-00000/labels.npy     (N, 40) uint8 0/1     partitions.npy (N,) uint8
    OUT/shard-00000/crop_boxes.npy (N, 4) int32 (left, top, right, bottom in the photo)
    OUT/shard-00000/landmarks.npy  (N, 10) int32, when the dataset has landmarks

Building is idempotent and incremental: shard k always holds the dataset's images
k*shard_size .. (k+1)*shard_size - 1 (of those present on disk), and its key hashes their ids,
file sizes and times, labels, the crop and the sizes. A rerun skips shards whose key matches
and whose arrays are all whole, and rebuilds the rest. Every shard is written under a temporary
name and renamed, so a crash never leaves a half-written shard behind a valid name. Images that
fail to decode are reported, not sharded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featurechanger.attributes import SPLITS, split_code
from featurechanger.data.celeba import CelebA, open_celeba
from featurechanger.data.images import cannot_read, check_crop, check_size, decode_aligned
from featurechanger.data.options import DEFAULT_CROP, DEFAULT_SHARD_SIZE
from featurechanger.data.parallel import ordered_map, progress_bar, resolve_workers
from featurechanger.errors import ConfigError, DataError
from featurechanger.locks import exclusive

FORMAT = 1
MANIFEST = "manifest.json"
BUILD_LOCK = ".shard-build.lock"  # held while a build writes the folder
INDEX = "index.json"
DECODE_CHUNK = 64  # images per task sent to a worker process


@dataclass
class ShardArrays:
    """Images of one resolution with their index; images may be memory-mapped (read-only).

    images: (N, S, S, 3) uint8; labels: (N, 40) uint8 0/1; partitions: (N,) uint8 0 train,
    1 val, 2 test; crop_boxes: (N, 4) int32 (left, top, right, bottom) in the original photo;
    landmarks: (N, 10) int32 in the original photo, or None; source_paths relative to the
    dataset root.
    """

    images: np.ndarray
    labels: np.ndarray
    partitions: np.ndarray
    image_ids: list[str]
    source_paths: list[str]
    crop_boxes: np.ndarray
    landmarks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.image_ids)

    def select(self, mask: np.ndarray) -> "ShardArrays":
        """The rows where `mask` is true (copies them into memory)."""
        rows = np.flatnonzero(mask)
        return ShardArrays(
            images=self.images[rows], labels=self.labels[rows], partitions=self.partitions[rows],
            image_ids=[self.image_ids[i] for i in rows],
            source_paths=[self.source_paths[i] for i in rows], crop_boxes=self.crop_boxes[rows],
            landmarks=None if self.landmarks is None else self.landmarks[rows],
        )


@dataclass
class ShardSet:
    """A shard set on disk, as described by its manifest."""

    path: Path
    dataset_root: Path
    layout: str
    fingerprint: str
    sizes: tuple[int, ...]
    crop: str
    shard_size: int
    shards: list[dict]  # per shard: name, images, splits {train, val, test}
    excluded: list[dict] = field(default_factory=list)  # {"image_id", "reason"}

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    @property
    def num_images(self) -> int:
        return sum(shard["images"] for shard in self.shards)

    @property
    def label(self) -> str:
        """What names the files trained on this shard set (localisers, judges): its folder, its
        dataset and, when not the default, its crop, so that sets that differ do not share."""
        crop = "" if self.crop == DEFAULT_CROP else f"-{self.crop}"
        return f"{self.path.name}-{self.fingerprint[:8]}{crop}"

    @property
    def grouping(self) -> str:
        """What a shard's number means (the dataset, the crop, the images per shard): a job
        planned on one grouping must not run its shard tasks on another."""
        return f"{self.fingerprint[:16]}:{self.crop}:{self.shard_size}"

    def split_counts(self) -> dict[str, int]:
        return {name: sum(shard["splits"][name] for shard in self.shards) for name in SPLITS}

    def shard(self, index: int, size: int) -> ShardArrays:
        """Shard `index` at resolution `size`; its images are memory-mapped, not read."""
        self._check_size(size)
        if not 0 <= index < self.num_shards:
            raise ConfigError(f"Shard {index!r} does not exist; {self.path} has shards "
                              f"0..{self.num_shards - 1}.")
        folder = self.path / self.shards[index]["name"]
        try:
            index_data = json.loads((folder / INDEX).read_text())
            landmarks = folder / "landmarks.npy"
            return ShardArrays(
                images=np.load(folder / f"images-{size}.npy", mmap_mode="r"),
                labels=np.load(folder / "labels.npy"),
                partitions=np.load(folder / "partitions.npy"),
                image_ids=index_data["image_ids"], source_paths=index_data["source_paths"],
                crop_boxes=np.load(folder / "crop_boxes.npy"),
                landmarks=np.load(landmarks) if landmarks.exists() else None,
            )
        except (OSError, ValueError, KeyError) as error:  # a deleted or truncated file
            raise DataError(
                f"Shard {str(folder)!r} is damaged ({type(error).__name__}: {error}). "
                f"`{self.rebuild_command()}` rebuilds the damaged shards only.") from error

    def require_sizes(self, sizes: Sequence[int], reader: str) -> None:
        """Raise a DataError unless the set has images at every one of `sizes`, which `reader`
        (e.g. "The localiser") reads."""
        missing = [size for size in sizes if size not in self.sizes]
        if missing:
            raise DataError(
                f"{reader} reads {' and '.join(f'{size} px' for size in sizes)} images, and "
                f"shard set {str(self.path)!r} has {', '.join(map(str, self.sizes))} px only; "
                f"rebuild it with `{self.rebuild_command(missing)}`.")

    def rebuild_command(self, sizes: Sequence[int] = ()) -> str:
        """The `data shard` command that builds this shard set again, with `sizes` added."""
        options = "".join(f" --size {size}" for size in sorted({*self.sizes, *sizes}))
        if self.crop != DEFAULT_CROP:
            options += f" --crop {self.crop}"
        if self.shard_size != DEFAULT_SHARD_SIZE:
            options += f" --shard-size {self.shard_size}"
        return f"featurechanger data shard {self.dataset_root} --out {self.path}{options}"

    def load(self, size: int, split: str | None = None) -> ShardArrays:
        """Every shard's images at `size` in one in-memory array, optionally of one split."""
        self._check_size(size)
        code = None if split is None else split_code(split)
        total = self.num_images if code is None else self.split_counts()[split]
        parts = [arrays for _, arrays in iter_shards(self, size, split)]
        images = np.empty((total, size, size, 3), dtype=np.uint8)
        start = 0
        for arrays in parts:  # fill in place: never hold two copies of the images
            images[start:start + len(arrays)] = arrays.images
            start += len(arrays)
        has_landmarks = bool(parts) and all(p.landmarks is not None for p in parts)
        return ShardArrays(
            images=images,
            labels=_concat([p.labels for p in parts], (0, 40), np.uint8),
            partitions=_concat([p.partitions for p in parts], (0,), np.uint8),
            image_ids=[i for p in parts for i in p.image_ids],
            source_paths=[s for p in parts for s in p.source_paths],
            crop_boxes=_concat([p.crop_boxes for p in parts], (0, 4), np.int32),
            landmarks=_concat([p.landmarks for p in parts], (0, 10), np.int32)
            if has_landmarks else None,
        )

    def _check_size(self, size: int) -> None:
        if size not in self.sizes:
            raise ConfigError(
                f"Shard set {str(self.path)!r} has no {size!r} px images; it has "
                f"{', '.join(map(str, self.sizes))}. Rebuild it with "
                f"`{self.rebuild_command([size])}`."
            )


def _concat(arrays: list[np.ndarray], empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(empty_shape, dtype=dtype)


def iter_shards(shard_set: ShardSet, size: int,
                split: str | None = None) -> Iterator[tuple[int, ShardArrays]]:
    """(shard index, arrays) for each shard holding images of `split` (None: all splits)."""
    code = None if split is None else split_code(split)
    for index, info in enumerate(shard_set.shards):
        if code is not None and info["splits"][split] == 0:
            continue
        arrays = shard_set.shard(index, size)
        yield index, arrays if code is None else arrays.select(arrays.partitions == code)


def open_shard_set(path: Path | str) -> ShardSet:
    """Read a shard set's manifest; the error says how to build one when there is none."""
    path = Path(path).absolute()
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{str(path)!r} is not a shard set (no {MANIFEST}). Build one with "
            f"`featurechanger data shard DATASET --out {path}`."
        )
    manifest = _read_manifest(manifest_path)
    return ShardSet(
        path=path, dataset_root=Path(manifest["dataset_root"]), layout=manifest["layout"],
        fingerprint=manifest["fingerprint"], sizes=tuple(manifest["sizes"]),
        crop=manifest["crop"], shard_size=manifest["shard_size"], shards=manifest["shards"],
        excluded=manifest["excluded"],
    )


def _read_manifest(path: Path) -> dict:
    rebuild = f"Rebuild it with `featurechanger data shard DATASET --out {path.parent} --replace`."
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"Cannot read shard manifest {str(path)!r}: {error}. {rebuild}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(f"Shard manifest {str(path)!r} has format {found!r}; this version "
                        f"reads format {FORMAT}. {rebuild}")
    return manifest


# ---------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class _Plan:
    """One shard to (re)build: its name, its key and the dataset rows it holds."""

    name: str
    key: str
    rows: np.ndarray


@dataclass(frozen=True)
class _DecodeTask:
    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    crop: str


Decoded = tuple[dict[int, np.ndarray] | None, tuple[int, int, int, int] | str]


def build_shards(dataset_root: Path | str, out: Path | str, sizes: Sequence[int] = (32, 64),
                 shard_size: int = DEFAULT_SHARD_SIZE, crop: str = DEFAULT_CROP,
                 workers: int | None = None, progress: bool = True,
                 replace: bool = False,
                 on_shard: Callable[[int], None] | None = None) -> ShardSet:
    """Decode every image of the dataset into shards under `out`; returns the shard set.

    `on_shard(images)` hears how many of the dataset's images are in finished shards, once
    for those a rerun skips and after each shard written; it may raise to stop the build
    between shards (what is written stays, and a rerun skips it).

    Reruns are incremental (see the module docstring). Images that cannot be decoded are
    excluded and listed in the manifest with the reason, next to the images missing on disk.
    A shard set of another dataset in `out`, or one this build would give fewer sizes, another
    crop or another shard size, is rebuilt only with `replace`. A second build of the same
    folder while one runs is refused (a lock file, OUT/.shard-build.lock, says so).
    """
    sizes = _check_sizes(sizes)
    check_crop(crop)
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"Shard size must be a positive number of images, not {shard_size!r}.")
    workers = resolve_workers(workers)
    dataset = open_celeba(dataset_root)
    out = Path(out).absolute()
    options = (sizes, crop, shard_size, replace)
    check_shard_output(out, dataset.fingerprint, *options)  # before writing a lock file there
    busy = (f"Another `data shard` is building {str(out)!r} now; wait for it to end (two "
            f"builds at once would mix their shards).")
    with exclusive(out / BUILD_LOCK, busy):
        check_shard_output(out, dataset.fingerprint, *options)  # the other may have built it
        return _build(dataset, out, sizes, shard_size, crop, workers, progress,
                      on_shard or (lambda _: None))


def _build(dataset: CelebA, out: Path, sizes: tuple[int, ...], shard_size: int, crop: str,
           workers: int, progress: bool, on_shard: Callable[[int], None]) -> ShardSet:
    starts = range(0, len(dataset), shard_size)
    plans = [_Plan(_shard_name(k), _shard_key(dataset, rows, sizes, crop), rows)
             for k, rows in enumerate(np.arange(s, min(s + shard_size, len(dataset)))
                                      for s in starts)]
    todo = [plan for plan in plans
            if not _is_complete(out / plan.name, plan.key, sizes, dataset.landmarks is not None)]
    done = len(dataset) - sum(len(plan.rows) for plan in todo)
    on_shard(done)
    for written in _decode_and_write(dataset, out, todo, sizes, crop, workers, progress):
        on_shard(done + written)
    _remove_stale(out, {plan.name for plan in plans})
    _write_manifest(out, dataset, plans, sizes, crop, shard_size)
    return open_shard_set(out)


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    if not sizes:
        raise ConfigError("Give at least one image size (e.g. --size 32).")
    return tuple(sorted({check_size(size) for size in sizes}))


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def check_shard_output(out: Path, fingerprint: str, sizes: Sequence[int], crop: str,
                       shard_size: int, replace: bool = False) -> None:
    """Refuse to write into a folder that holds anything but a shard set, or, unless
    `replace`, a shard set of another dataset or one whose rebuild with these options would
    drop a size, change the crop or regroup the shards: runs, vector sets and planned jobs
    recorded on it would silently come to mean other images (or none)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"Shard output {str(out)!r} is a file; choose a folder path.")
    if not out.is_dir():
        return
    foreign = [entry.name for entry in out.iterdir() if not _is_ours(entry.name)]
    if foreign:
        raise DataError(
            f"Shard output {str(out)!r} holds {foreign[0]!r}, so it is not a shard set; choose "
            "an empty or new folder."
        )
    if (out / MANIFEST).is_file() and not replace:
        built_from = _read_manifest(out / MANIFEST)
        if built_from["fingerprint"] != fingerprint:
            raise DataError(
                f"Shard output {str(out)!r} holds the shards of another dataset "
                f"({built_from['dataset_root']}); choose a new folder, or pass --replace to "
                f"rebuild it from this one (runs trained on it would then read other images).")
        changes = _option_changes(built_from, sizes, crop, shard_size)
        if changes:
            kept = open_shard_set(out).rebuild_command(sizes)
            raise DataError(
                f"Shard output {str(out)!r} holds this dataset's shards, and this build would "
                f"{' and '.join(changes)}, which runs, vector sets and jobs recorded on it read. "
                f"Keep its options (`{kept}` rebuilds it with the sizes asked for added), "
                f"choose a new folder, or pass --replace to rebuild it so.")


def _option_changes(manifest: dict, sizes: Sequence[int], crop: str,
                    shard_size: int) -> list[str]:
    """What a rebuild with these options would change of the shard set `manifest` describes
    beyond adding sizes (which only adds arrays)."""
    changes = []
    dropped = sorted(set(manifest["sizes"]) - set(sizes))
    if dropped:
        changes.append(f"drop its {' and '.join(map(str, dropped))} px images")
    if manifest["crop"] != crop:
        changes.append(f"change its crop from {manifest['crop']} to {crop}")
    if manifest["shard_size"] != shard_size:
        changes.append(f"regroup its images from shards of {manifest['shard_size']} into "
                       f"shards of {shard_size}")
    return changes


def _is_ours(name: str) -> bool:
    """Shards, the manifest, and the temporary names a build writes them under."""
    return name.lstrip(".").startswith(("shard-", MANIFEST))


def _shard_key(dataset: CelebA, rows: np.ndarray, sizes: tuple[int, ...], crop: str) -> str:
    """Hash of everything a shard's content depends on: a rerun skips a shard whose key matches."""
    digest = hashlib.sha256(json.dumps([FORMAT, crop, list(sizes)]).encode())
    for row in rows:
        image_id = dataset.image_ids[row]
        try:
            stat = os.stat(dataset.image_dir / image_id)
            file_state = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            file_state = "missing"
        digest.update(f"{image_id}|{dataset.source_path(image_id)}|{file_state}|".encode())
        digest.update(dataset.labels[row].tobytes() + dataset.partitions[row].tobytes())
        if dataset.landmarks is not None:
            digest.update(dataset.landmarks[row].tobytes())
    return digest.hexdigest()


def _is_complete(folder: Path, key: str, sizes: tuple[int, ...], has_landmarks: bool) -> bool:
    """Whether the shard in `folder` was built for `key` and every array in it is whole (a
    deleted or truncated file makes a rerun rebuild the shard)."""
    arrays = {f"images-{size}.npy": (size, size, 3) for size in sizes}
    arrays.update({"labels.npy": (40,), "partitions.npy": (), "crop_boxes.npy": (4,)})
    if has_landmarks:
        arrays["landmarks.npy"] = (10,)
    try:
        index = json.loads((folder / INDEX).read_text())
        count = len(index["image_ids"])
        return index["key"] == key and all(
            np.load(folder / name, mmap_mode="r").shape == (count, *shape)
            for name, shape in arrays.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _decode_and_write(dataset: CelebA, out: Path, plans: list[_Plan], sizes: tuple[int, ...],
                      crop: str, workers: int, progress: bool) -> Iterator[int]:
    """Decode the planned shards' images over `workers` processes and write each shard;
    yields the images of the planned shards written so far after each."""
    chunked = [[rows[i:i + DECODE_CHUNK] for i in range(0, len(rows), DECODE_CHUNK)]
               for rows in (plan.rows for plan in plans)]
    tasks = [_DecodeTask(tuple(str(dataset.image_dir / dataset.image_ids[r]) for r in chunk),
                         sizes, crop)
             for chunks in chunked for chunk in chunks]
    results = ordered_map(_decode_chunk, tasks, max(1, min(workers, len(tasks))))
    total, written = sum(len(plan.rows) for plan in plans), 0
    with progress_bar(total, "decoding images", progress) as bar:
        for plan, chunks in zip(plans, chunked):
            decoded: list[Decoded] = []
            for chunk in chunks:
                decoded += next(results)
                bar.update(len(chunk))
            _write_shard(out, dataset, plan, decoded, sizes)
            written += len(plan.rows)
            yield written


def _decode_chunk(task: _DecodeTask) -> list[Decoded]:
    """Runs in a worker: read each file once and decode it at every size, or say why not."""
    decoded: list[Decoded] = []
    for path in task.paths:
        try:
            data = Path(path).read_bytes()
        except OSError as error:  # removed or unreadable since the dataset was opened
            decoded.append((None, cannot_read(path, error)))
            continue
        try:
            arrays, box = {}, None
            for size in task.sizes:
                arrays[size], box = decode_aligned(data, size, task.crop, name=Path(path).name)
            decoded.append((arrays, box))
        except DataError as error:
            decoded.append((None, str(error)))
    return decoded


def _write_shard(out: Path, dataset: CelebA, plan: _Plan, decoded: list[Decoded],
                 sizes: tuple[int, ...]) -> None:
    """Write one shard under a temporary name, then swap it in with renames."""
    good = np.array([arrays is not None for arrays, _ in decoded], dtype=bool)
    rows = plan.rows[good]
    ids = [dataset.image_ids[r] for r in rows]
    temporary = out / f".{plan.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    for size in sizes:
        stacked = np.stack([arrays[size] for arrays, _ in decoded if arrays is not None]) \
            if len(rows) else np.zeros((0, size, size, 3), dtype=np.uint8)
        np.save(temporary / f"images-{size}.npy", stacked)
    np.save(temporary / "labels.npy", dataset.labels[rows])
    np.save(temporary / "partitions.npy", dataset.partitions[rows])
    boxes = [box for arrays, box in decoded if arrays is not None]
    np.save(temporary / "crop_boxes.npy", np.array(boxes, dtype=np.int32).reshape(-1, 4))
    if dataset.landmarks is not None:
        np.save(temporary / "landmarks.npy", dataset.landmarks[rows])
    corrupt = [{"image_id": dataset.image_ids[r], "reason": reason}
               for r, (arrays, reason) in zip(plan.rows, decoded) if arrays is None]
    index = {"key": plan.key, "image_ids": ids,
             "source_paths": [dataset.source_path(i) for i in ids], "excluded": corrupt}
    (temporary / INDEX).write_text(json.dumps(index))
    final = out / plan.name
    if final.exists():
        retired = out / f".{plan.name}.old-{os.getpid()}"
        final.rename(retired)
        temporary.rename(final)
        shutil.rmtree(retired)
    else:
        temporary.rename(final)


def _remove_stale(out: Path, current: set[str]) -> None:
    """Delete shards beyond the dataset's end and leftovers of interrupted builds."""
    for entry in out.iterdir():
        if _is_ours(entry.name) and entry.name not in current | {MANIFEST, BUILD_LOCK}:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _write_manifest(out: Path, dataset: CelebA, plans: list[_Plan], sizes: tuple[int, ...],
                    crop: str, shard_size: int) -> None:
    shards = []
    excluded = [{"image_id": image_id, "reason": reason} for image_id, reason in dataset.excluded]
    for plan in plans:
        index = json.loads((out / plan.name / INDEX).read_text())
        partitions = np.load(out / plan.name / "partitions.npy")
        excluded += index["excluded"]
        shards.append({"name": plan.name, "images": len(index["image_ids"]),
                       "splits": {name: int((partitions == code).sum())
                                  for name, code in SPLITS.items()}})
    manifest = {
        "format": FORMAT, "dataset_root": str(dataset.root), "layout": dataset.layout,
        "fingerprint": dataset.fingerprint, "sizes": list(sizes), "crop": crop,
        "shard_size": shard_size, "shards": shards, "excluded": excluded,
    }
    temporary = out / f".{MANIFEST}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, out / MANIFEST)
