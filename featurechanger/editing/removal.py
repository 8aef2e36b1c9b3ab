"""How the blend composes a removal: the removed objects' bands, and what fills them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featurechanger.editing.localiser import RESOLUTION, Localiser
from featurechanger.editing.refiner import Refiner
from featurechanger.render.images import resize


class Removal:
    """For each removed attribute, its localiser's band filled by its refiner. A pixel is in
    the removal when it is in any band; where bands overlap, their fills mix by band weight."""

    def __init__(self, parts: Sequence[tuple[Localiser, Refiner]]) -> None:
        self.parts = list(parts)

    @property
    def attributes(self) -> list[str]:
        return [localiser.attribute for localiser, _ in self.parts]

    def __call__(self, crop: np.ndarray, decoded: np.ndarray,
                 model_pixel: float) -> tuple[np.ndarray, np.ndarray]:
        """(share, fill) over a crop ((h, w, 3) float in [0, 1]) given the upsampled
        decode(z') aligned with it: share (h, w, 1), fill (h, w, 3)."""
        small = resize(crop, RESOLUTION, RESOLUTION)  # what both nets see of the crop
        bands = [localiser.band(crop, model_pixel, small=small) for localiser, _ in self.parts]
        fills = [refiner.fill(crop, decoded, band, small=small)
                 for band, (_, refiner) in zip(bands, self.parts)]
        if len(bands) == 1:
            return bands[0], fills[0]
        total = np.sum(bands, axis=0)
        mixed = np.sum([band * fill for band, fill in zip(bands, fills)], axis=0)
        fill = np.where(total > 0, mixed / np.maximum(total, 1e-8), decoded)
        return np.max(bands, axis=0), fill
