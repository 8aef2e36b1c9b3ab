"""Shards: exact round trip, idempotent and incremental rebuilds, exclusions, split views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featurechanger.data.celeba import open_celeba
from featurechanger.data.images import crop_box, decode_aligned, load_aligned_image
from featurechanger.data.shards import BUILD_LOCK, build_shards, iter_shards, open_shard_set
from featurechanger.data.synth import write_synthetic
from featurechanger.data.torchdata import ShardDataset, images_to_tensor
from featurechanger.errors import ConfigError, DataError

COUNT = 40


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "faces", COUNT, seed=5, workers=1, progress=False)


def _build(dataset: Path, out: Path, **options) -> object:
    settings = {"sizes": (16, 32), "shard_size": 16, "workers": 1, "progress": False, **options}
    return build_shards(dataset, out, **settings)


@pytest.mark.parametrize("crop", ["center", "face", "squash"])
def test_shards_match_the_single_image_decode_exactly(dataset: Path, tmp_path: Path,
                                                      crop: str) -> None:
    shard_set = _build(dataset, tmp_path / "shards", crop=crop)
    source = open_celeba(dataset)
    assert (shard_set.num_shards, shard_set.num_images, shard_set.crop) == (3, COUNT, crop)
    for size in (16, 32):
        arrays = shard_set.load(size)
        assert arrays.images.shape == (COUNT, size, size, 3) and arrays.images.dtype == np.uint8
        assert arrays.image_ids == source.image_ids
        np.testing.assert_array_equal(arrays.labels, source.labels)
        np.testing.assert_array_equal(arrays.partitions, source.partitions)
        np.testing.assert_array_equal(arrays.landmarks, source.landmarks)
        for row, relative in enumerate(arrays.source_paths):
            image, box = load_aligned_image(dataset / relative, size, crop)
            np.testing.assert_array_equal(arrays.images[row], image)
            assert tuple(arrays.crop_boxes[row]) == box == crop_box(178, 218, crop)


def test_crop_boxes_of_an_aligned_celeba_photo() -> None:
    assert crop_box(178, 218, "center") == (0, 20, 178, 198)
    assert crop_box(178, 218, "face") == (25, 57, 153, 185)
    assert crop_box(178, 218, "squash") == (0, 0, 178, 218)
    assert crop_box(356, 436, "face") == (50, 114, 306, 370)  # scales with the photo
    with pytest.raises(ConfigError, match=r"Unknown crop 'middle'\. Valid values are"):
        crop_box(178, 218, "middle")


def test_squash_has_the_geometry_of_the_original_resize(dataset: Path) -> None:
    """The seed's Resize((s, s)) of the whole photo, but decoded at reduced JPEG scale."""
    path = dataset / "img_align_celeba/img_align_celeba/000007.jpg"
    ours, _ = load_aligned_image(path, 32, "squash")
    seed = np.asarray(Image.open(path).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
    assert np.abs(ours.astype(int) - seed).mean() < 3
    centre, _ = load_aligned_image(path, 32, "center")
    assert np.abs(centre.astype(int) - seed).mean() > 3 * np.abs(ours.astype(int) - seed).mean()


def test_png_images_decode_at_full_scale(tmp_path: Path) -> None:
    Image.new("RGB", (178, 218), (10, 200, 30)).save(tmp_path / "a.png")
    image, box = load_aligned_image(tmp_path / "a.png", 8)
    assert box == (0, 20, 178, 198) and (image == (10, 200, 30)).all()


def test_rerun_is_idempotent_and_rebuilds_only_what_changed(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    first = _build(dataset, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    second = _build(dataset, out)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")} == stamps
    assert second.shards == first.shards and second.fingerprint == first.fingerprint

    changed = dataset / "img_align_celeba/img_align_celeba/000020.jpg"  # in shard 1
    Image.new("RGB", (178, 218), (255, 0, 0)).save(changed)
    third = _build(dataset, out)
    rebuilt = {p.parent.name for p, stamp in stamps.items() if p.stat().st_mtime_ns != stamp}
    assert rebuilt == {"shard-00001"}
    red = third.shard(1, 16).images[3].astype(int)
    assert (np.abs(red - (255, 0, 0)) <= 2).all()
    assert sorted(p.name for p in out.iterdir() if p.name != BUILD_LOCK) == [
        "manifest.json", "shard-00000", "shard-00001", "shard-00002"]


def test_files_trained_on_a_shard_set_are_named_after_its_folder_dataset_and_crop(
        dataset: Path, tmp_path: Path) -> None:
    center = _build(dataset, tmp_path / "a" / "shards")
    again = _build(dataset, tmp_path / "b" / "shards")  # the same images: shared
    face = _build(dataset, tmp_path / "c" / "shards", crop="face")
    assert center.label == again.label == f"shards-{center.fingerprint[:8]}"
    assert face.label == f"{center.label}-face"


def test_a_second_build_of_a_folder_while_one_runs_is_refused(dataset: Path,
                                                              tmp_path: Path) -> None:
    from featurechanger.locks import exclusive

    out = tmp_path / "shards"
    with exclusive(out / BUILD_LOCK, "held by this test"):  # as a build in another process
        with pytest.raises(DataError, match="Another `data shard` is building"):
            _build(dataset, out, crop="face")
    assert _build(dataset, out).crop == "center"  # once it has ended


def test_a_damaged_shard_is_named_and_a_rerun_rebuilds_it_alone(dataset: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "shards"
    _build(dataset, out)
    whole = (out / "shard-00000" / "images-16.npy").read_bytes()
    stamp = (out / "shard-00002" / "images-16.npy").stat().st_mtime_ns
    for damage in ("delete", "truncate"):
        target = out / "shard-00000" / "images-16.npy"
        if damage == "delete":
            target.unlink()
        else:
            target.write_bytes(whole[:1000])
        with pytest.raises(DataError, match=r"shard-00000' is damaged .* `featurechanger data "
                                            r"shard .* --size 16 --size 32 --shard-size 16`"):
            open_shard_set(out).load(16)
        _build(dataset, out)
        assert (out / "shard-00000" / "images-16.npy").read_bytes() == whole
    assert (out / "shard-00002" / "images-16.npy").stat().st_mtime_ns == stamp
    (out / "manifest.json").write_text('{"format": 1, "sha')
    with pytest.raises(DataError, match=r"Cannot read shard manifest .* --replace`"):
        _build(dataset, out)
    assert _build(dataset, out, replace=True).num_images == COUNT


def test_fewer_shards_after_a_rebuild_leave_no_stale_ones(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    _build(dataset, out)
    shard_set = _build(dataset, out, shard_size=64, sizes=(16,), replace=True)
    assert shard_set.num_shards == 1 and shard_set.sizes == (16,)
    assert sorted(p.name for p in out.iterdir() if p.name != BUILD_LOCK) == [
        "manifest.json", "shard-00000"]
    with pytest.raises(ConfigError, match=r"has no 32 px images; it has 16\. Rebuild it"):
        shard_set.load(32)


@pytest.mark.parametrize("options, change", [
    ({"sizes": (16,)}, "drop its 32 px images"),
    ({"crop": "face"}, "change its crop from center to face"),
    ({"shard_size": 8}, "regroup its images from shards of 16 into shards of 8"),
])
def test_a_rebuild_that_would_change_what_runs_read_needs_replace(
        dataset: Path, tmp_path: Path, options: dict, change: str) -> None:
    out = tmp_path / "shards"
    built = _build(dataset, out)
    stamps = {str(p): p.stat().st_mtime_ns for p in out.glob("shard-*/*.npy")}
    with pytest.raises(DataError, match=rf"would {change}, .* Keep its options \(`featurechanger "
                                        rf"data shard .* --size 16 --size 32 --shard-size 16`"):
        _build(dataset, out, **options)
    assert open_shard_set(out) == built  # untouched
    assert {str(p): p.stat().st_mtime_ns for p in out.glob("shard-*/*.npy")} == stamps
    assert _build(dataset, out, sizes=(16, 32, 64)).sizes == (16, 32, 64)  # adding is fine
    assert _build(dataset, out, replace=True, **options) != built


def test_the_shards_of_another_dataset_are_rebuilt_only_when_asked(dataset: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "shards"
    built = _build(dataset, out)
    other = write_synthetic(tmp_path / "other", COUNT, seed=6, workers=1, progress=False)
    with pytest.raises(DataError, match=r"holds the shards of another dataset .*--replace"):
        _build(other, out)
    assert open_shard_set(out).fingerprint == built.fingerprint  # untouched
    assert _build(other, out, replace=True).fingerprint == open_celeba(other).fingerprint


def test_corrupt_and_missing_images_are_reported_not_sharded(dataset: Path,
                                                              tmp_path: Path) -> None:
    images = dataset / "img_align_celeba/img_align_celeba"
    (images / "000003.jpg").write_bytes((images / "000003.jpg").read_bytes()[:300])
    (images / "000004.jpg").write_bytes(b"not a jpeg")
    (images / "000030.jpg").unlink()
    Image.open(images / "000031.jpg").resize((128, 128)).save(images / "000031.jpg")
    Image.open(images / "000032.jpg").resize((89, 109)).save(images / "000032.jpg")  # a scale
    shard_set = _build(dataset, tmp_path / "shards")
    assert shard_set.num_images == COUNT - 4
    reasons = {item["image_id"]: item["reason"] for item in shard_set.excluded}
    assert set(reasons) == {"000003.jpg", "000004.jpg", "000030.jpg", "000031.jpg"}
    assert reasons["000031.jpg"].startswith("Photo '000031.jpg' is 128x128; CelebA-aligned")
    assert reasons["000003.jpg"] == ("Cannot decode '000003.jpg': Truncated File Read. Replace "
                                     "or remove the file.")
    assert reasons["000004.jpg"] == ("Cannot decode '000004.jpg': not an image file Pillow can "
                                     "read. Replace or remove the file.")
    assert reasons["000030.jpg"] == "missing file img_align_celeba/img_align_celeba/000030.jpg"
    loaded = shard_set.load(16)
    assert not {"000003.jpg", "000004.jpg", "000030.jpg", "000031.jpg"} & set(loaded.image_ids)
    assert len(loaded) == len(loaded.labels) == len(loaded.crop_boxes) == COUNT - 4
    assert _build(dataset, tmp_path / "shards").excluded == shard_set.excluded  # still reported


def test_split_views_and_the_shard_iterator(dataset: Path, tmp_path: Path) -> None:
    shard_set = _build(dataset, tmp_path / "shards")
    assert shard_set.split_counts() == {"train": 32, "val": 4, "test": 4}
    val = shard_set.load(16, "val")
    assert len(val) == 4 and (val.partitions == 1).all()
    assert val.image_ids == ["000033.jpg", "000034.jpg", "000035.jpg", "000036.jpg"]
    visited = [(index, len(arrays)) for index, arrays in iter_shards(shard_set, 32, "test")]
    assert visited == [(2, 4)]  # shards 0 and 1 hold no test images and are skipped
    mapped = shard_set.shard(0, 32).images
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    with pytest.raises(ConfigError, match=r"Unknown split 'valid'\. Valid values are"):
        shard_set.load(16, "valid")
    with pytest.raises(ConfigError, match=r"Shard 3 does not exist; .* has shards 0\.\.2"):
        shard_set.shard(3, 16)


def test_torch_dataset_and_tensor_conversion(dataset: Path, tmp_path: Path) -> None:
    shard_set = _build(dataset, tmp_path / "shards")
    train = ShardDataset(shard_set, "train", 32)
    image, labels = train[5]
    assert len(train) == 32 and image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert labels.shape == (40,) and labels.dtype == torch.uint8
    arrays = shard_set.load(32, "train")
    assert torch.equal(image, images_to_tensor(arrays.images[5:6])[0])
    assert torch.equal(image * 255, torch.from_numpy(arrays.images[5]).permute(2, 0, 1).float())
    assert torch.equal(labels, torch.from_numpy(arrays.labels[5]))


def test_reopened_set_describes_itself(dataset: Path, tmp_path: Path) -> None:
    built = _build(dataset, tmp_path / "shards")
    opened = open_shard_set(tmp_path / "shards")
    assert (opened.dataset_root, opened.fingerprint, opened.sizes, opened.num_images) == (
        dataset.absolute(), open_celeba(dataset).fingerprint, (16, 32), COUNT)
    assert opened.shards == built.shards


def test_bad_shard_inputs_are_named(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is not a shard set \(no manifest\.json\)\. Build one "
                                        r"with `featurechanger data shard DATASET --out"):
        open_shard_set(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"holds 'notes\.txt', so it is not a shard set"):
        _build(dataset, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match=r"Unknown crop 'tight'"):
        _build(dataset, tmp_path / "x", crop="tight")
    with pytest.raises(ConfigError, match=r"Image size must be a positive number of pixels, not 0"):
        _build(dataset, tmp_path / "x", sizes=(0,))
    with pytest.raises(ConfigError, match=r"Shard size must be a positive number of images"):
        _build(dataset, tmp_path / "x", shard_size=0)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps({"format": 0}))
    with pytest.raises(DataError, match=r"has format 0; this version reads format 1\. Rebuild "
                                        r"it with .* --replace`"):
        open_shard_set(tmp_path / "old")
    with pytest.raises(DataError, match=r"Cannot decode 'x.jpg': .* Replace or remove the file"):
        decode_aligned(b"\xff\xd8 broken", 32, name="x.jpg")
