"""Which localisers and refiners a blended removal needs, and where `featurechanger localiser
train` and `featurechanger refiner train` keep them (without importing torch: planning a job
must not).

A pure removal is blended only inside the band where the removed objects lie (see
featurechanger.editing.localiser), filled with the refined decoded edit (see
featurechanger.editing.refiner); an edit that adds anything is blended as before, since what it
adds (a smile, blond hair) is not an object a band could bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from featurechanger.config import Settings
from featurechanger.data.shards import ShardSet
from featurechanger.errors import DataError
from featurechanger.latent.edits import EditSpec

if TYPE_CHECKING:
    from featurechanger.editing.removal import Removal


def localiser_path(settings: Settings, shard_set: ShardSet, attribute: str) -> Path:
    """Where `localiser train` keeps a shard set's localiser of an attribute."""
    return settings.checkpoint_root / "localisers" / shard_set.label / f"{attribute}.pt"


def refiner_path(checkpoint: Path, attribute: str) -> Path:
    """Where `refiner train` keeps the refiner of a run's checkpoint file for removing an
    attribute: beside the checkpoint, in a folder named after it, so that a checkpoint trained
    further has none until it is trained again."""
    return checkpoint.parent / "refiners" / checkpoint.stem / f"{attribute}.pt"


def run_removal_parts(settings: Settings, run_id: int, training_shards: ShardSet,
                      spec: EditSpec, output: str) -> dict[str, dict[str, Path]]:
    """removal_parts for run `run_id`, trained on `training_shards`: their localisers, the
    refiners of the run's latest checkpoint (for the benches; a command that also loads the
    model looks the checkpoint up once and calls removal_parts)."""
    from featurechanger.training.runs import latest_checkpoint

    checkpoint = latest_checkpoint(settings, run_id)
    return removal_parts(settings, training_shards, checkpoint, run_id, spec, output)


def is_banded(output: str | None, add: Sequence[str], remove: Sequence[str]) -> bool:
    """Whether an edit is a removal composed inside its objects' bands: a pure removal with
    the blend output."""
    return output == "blend" and not add and bool(remove)


def removal_parts(settings: Settings, shard_set: ShardSet, checkpoint: Path,
                  run_id: int, spec: EditSpec, output: str) -> dict[str, dict[str, Path]]:
    """{"localisers": attribute -> file, "refiners": attribute -> file}: what a blend of `spec`
    needs (the localisers of `shard_set`, the run's training shards; the refiners of run
    `run_id`'s `checkpoint`), each checked to exist; both empty for other outputs and for
    edits that add."""
    if not is_banded(output, spec.add, spec.remove):
        return {"localisers": {}, "refiners": {}}
    parts = {"localisers": {name: localiser_path(settings, shard_set, name)
                            for name in spec.remove},
             "refiners": {name: refiner_path(checkpoint, name) for name in spec.remove}}
    for name in spec.remove:
        if not parts["localisers"][name].is_file():
            raise missing_localiser(parts["localisers"][name], name)
        if not parts["refiners"][name].is_file():
            raise missing_refiner(parts["refiners"][name], name, run_id)
    return parts


def part_names(parts: dict[str, dict[str, Path]]) -> dict[str, dict[str, str]]:
    """removal_parts' files as strings, for a report's "localisers" and "refiners" keys."""
    return {kind: {name: str(path) for name, path in paths.items()}
            for kind, paths in parts.items()}


def missing_localiser(path: Path, attribute: str) -> DataError:
    return DataError(f"No {attribute} localiser at {str(path)!r}: the blend composes a removal "
                     f"inside the removed object's band. Train it with `featurechanger "
                     f"localiser train --data SHARDS --attribute {attribute}` (SHARDS: the "
                     "run's training shards), or choose --output residual or decoded.")


def missing_refiner(path: Path, attribute: str, run_id: int) -> DataError:
    return DataError(f"No {attribute} refiner at {str(path)!r} for run {run_id}'s checkpoint: "
                     "the blend fills the removed object's band with the decoded edit, its "
                     "detail restored by the run's refiner. Train it with `featurechanger "
                     f"refiner train --run {run_id} --attribute {attribute}` (again after the "
                     "run trains further), or choose --output residual or decoded.")


def load_removal(parts: dict[str, dict[str, Path]], run_id: int) -> Removal | None:
    """The removal of these localisers and refiners (as removal_parts gives them), or None
    without any."""
    if not parts.get("localisers"):
        return None
    unrefined = [name for name in parts["localisers"] if name not in parts.get("refiners", {})]
    if unrefined:
        raise DataError(f"This edit names no refiner for {', '.join(unrefined)}: it was planned "
                        "by an earlier featurechanger. Submit the edit again.")
    from featurechanger.editing.localiser import load_localiser
    from featurechanger.editing.refiner import load_refiner
    from featurechanger.editing.removal import Removal

    return Removal([(load_localiser(path, name),
                     load_refiner(parts["refiners"][name], name, run_id))
                    for name, path in parts["localisers"].items()])
