"""Which localisers a blended edit needs, and where `featurechanger localiser train` keeps
them (without importing torch: planning a job must not).

A pure removal is blended only inside the band where the removed objects lie (see
featurechanger.editing.localiser); an edit that adds anything is blended as before, since what
it adds (a smile, blond hair) is not an object a band could bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from featurechanger.config import Settings
from featurechanger.data.shards import ShardSet
from featurechanger.errors import DataError
from featurechanger.latent.edits import EditSpec

if TYPE_CHECKING:
    from featurechanger.editing.localiser import RemovalBand


def localiser_path(settings: Settings, shard_set: ShardSet, attribute: str) -> Path:
    """Where `localiser train` keeps a shard set's localiser of an attribute."""
    folder = f"{shard_set.path.name}-{shard_set.fingerprint[:8]}"
    return settings.checkpoint_root / "localisers" / folder / f"{attribute}.pt"


def band_localisers(settings: Settings, shard_set: ShardSet, spec: EditSpec,
                    output: str) -> dict[str, Path]:
    """attribute -> the localiser file a blend of `spec` needs (those of `shard_set`, the run's
    training shards), each checked to exist; empty for other outputs and for edits that add."""
    if output != "blend" or spec.add:
        return {}
    paths = {name: localiser_path(settings, shard_set, name) for name in spec.remove}
    for name, path in paths.items():
        if not path.is_file():
            raise missing_localiser(path, name)
    return paths


def missing_localiser(path: Path, attribute: str) -> DataError:
    return DataError(f"No {attribute} localiser at {str(path)!r}: the blend composes a removal "
                     f"inside the removed object's band. Train it with `featurechanger "
                     f"localiser train --data SHARDS --attribute {attribute}` (SHARDS: the "
                     "run's training shards), or choose --output residual or decoded.")


def load_band(paths: dict[str, Path]) -> RemovalBand | None:
    """The band of these localisers (attribute -> file), or None without any."""
    if not paths:
        return None
    from featurechanger.editing.localiser import RemovalBand, load_localiser

    return RemovalBand([load_localiser(path, name) for name, path in paths.items()])
