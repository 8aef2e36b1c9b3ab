"""Looping GIFs of interpolations, upscaled so that a person can see a 32 or 64 px face."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where GIFs are written: the CLI reads DEFAULT_FRAMES at start
    import numpy as np

GIF_SIZE = 256  # the seed's GIFs: 256 px, 100 ms a frame, 20 frames, looping forever
FRAME_MS = 100
DEFAULT_FRAMES = 20  # here, not beside the torch code that draws them: job planners read it


def write_gif(frames: Sequence[np.ndarray], path: Path, *, size: int = GIF_SIZE,
              frame_ms: int = FRAME_MS) -> Path:
    """Write frames ((H, W, 3) uint8 or [0, 1] float) as a GIF whose longer side is `size`.

    The GIF encoder stores identical consecutive frames once, with their durations added (a
    strength-0 edit, or a morph of an image into itself): it plays the same."""
    import imageio.v3 as iio
    import numpy as np

    from featurechanger.render.images import enlarge, write_atomically

    if len(frames) == 0:
        raise ValueError("a GIF needs at least one frame")
    enlarged = np.stack([enlarge(frame, size) for frame in frames])
    return write_atomically(Path(path), lambda target: iio.imwrite(
        target, enlarged, extension=".gif", duration=frame_ms, loop=0))
