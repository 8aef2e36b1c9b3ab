"""PGAE's growth schedule as pure functions of the number of training images seen.

Phases: the first resolution is trained (stabilised) alone; every later resolution is first
faded in, alpha ramping linearly 0 -> 1 over `fade_images`, then stabilised at alpha = 1 for
`stabilise_images`. Training may run past the schedule: the last resolution then keeps
stabilising. Counting images, not steps or epochs, keeps the schedule independent of the batch
size and the dataset size (as in Karras et al., who count 800k images per phase).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    resolution: int
    alpha: float  # weight of the newest blocks; 1.0 when stabilising
    fading: bool


@dataclass(frozen=True)
class GrowthSchedule:
    resolutions: tuple[int, ...]  # e.g. (8, 16, 32, 64)
    fade_images: int
    stabilise_images: int

    def __post_init__(self) -> None:
        if self.fade_images < 0 or self.stabilise_images <= 0:
            raise ValueError(f"fade_images must be >= 0 and stabilise_images > 0; got "
                             f"{self.fade_images!r} and {self.stabilise_images!r}")

    def _segments(self) -> list[tuple[int, int, bool]]:
        """(resolution, images, fading) for each phase, in order."""
        segments = [(self.resolutions[0], self.stabilise_images, False)]
        for side in self.resolutions[1:]:
            if self.fade_images:
                segments.append((side, self.fade_images, True))
            segments.append((side, self.stabilise_images, False))
        return segments

    @property
    def total_images(self) -> int:
        """Images until the last resolution has been faded in and stabilised once."""
        return sum(images for _, images, _ in self._segments())

    def phase_at(self, images_seen: int) -> Phase:
        """The phase a training step starts in after `images_seen` images."""
        start = 0
        for side, images, fading in self._segments():
            if images_seen < start + images:
                alpha = (images_seen - start) / images if fading else 1.0
                return Phase(side, alpha, fading)
            start += images
        return Phase(self.resolutions[-1], 1.0, False)
