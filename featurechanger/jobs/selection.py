"""The shard set side of planning: which images a job works on (`--split`, `--where ATTR=0|1`),
one task per shard that holds any of them, and the shard set's SQL record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from featurechanger.attributes import attribute_index, canonical_attribute, split_code
from featurechanger.config import Settings
from featurechanger.data.shards import ShardArrays, ShardSet
from featurechanger.errors import ConfigError, DataError
from featurechanger.jobs.context import PlannedTask


def parse_where(conditions: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
    """["Eyeglasses=1", "Male=0"] (or an already parsed mapping) -> {"Eyeglasses": 1, "Male": 0}."""
    pairs = conditions.items() if isinstance(conditions, Mapping) else (
        _split_condition(condition) for condition in conditions)
    where: dict[str, int] = {}
    for name, value in pairs:
        if str(value) not in ("0", "1"):
            raise ConfigError(f"--where {name}={value!r}: the value must be 1 (has it) or 0 "
                              f"(has it not).")
        name = canonical_attribute(name)
        if where.get(name, int(value)) != int(value):
            raise ConfigError(f"--where {name}=0 and --where {name}=1 contradict each other; "
                              f"keep one.")
        where[name] = int(value)
    return where


def _split_condition(condition: str) -> tuple[str, str]:
    name, equals, value = condition.partition("=")
    if not equals:
        raise ConfigError(f"--where {condition!r} must look like ATTR=1 or ATTR=0, "
                          f"e.g. --where Eyeglasses=1.")
    return name.strip(), value.strip()


def selected(arrays: ShardArrays, split: str, where: Mapping[str, int]) -> np.ndarray:
    """(N,) bool: the rows of a shard in `split` ('all' for every split) that match `where`."""
    mask = np.ones(len(arrays), dtype=bool)
    code = split_code(split)
    if code is not None:
        mask &= arrays.partitions == code
    for name, value in where.items():
        mask &= arrays.labels[:, attribute_index(name)] == value
    return mask


def plan_shards(shard_set: ShardSet, split: str, where: Mapping[str, int]) -> list[PlannedTask]:
    """One task per shard holding selected images, with their count; an error if none is."""
    tasks = []
    for index in range(shard_set.num_shards):
        count = int(selected(shard_set.shard(index, shard_set.sizes[0]), split, where).sum())
        if count:
            tasks.append(PlannedTask(item=index, total=count))
    if not tasks:
        wanted = " and ".join(f"{name}={value}" for name, value in where.items()) or "any"
        raise DataError(f"No image of {str(shard_set.path)!r} matches --split {split} with "
                        f"--where {wanted}; loosen the selection.")
    return tasks


def shard_set_id(settings: Settings, shard_set: ShardSet) -> int:
    """The id of the shard set's SQL record (made or brought up to date now)."""
    from featurechanger.data.records import record_shard_set
    from featurechanger.db.session import session_scope

    with session_scope(settings.database_url) as session:
        return record_shard_set(session, settings, shard_set).id
