"""The learning rate of every step, as a pure function of the step (so a resumed run repeats it).

"cosine": a linear warm-up from lr/warmup to lr over the first `warmup_steps` (Adam's early
moment estimates are noisy, and large first steps unsettle BatchNorm statistics), then lr held,
then a half cosine from lr down to 0 between `anneal_start` and the last step. Annealing lets
the final steps settle into a minimum instead of jittering around it at a constant step size:
DCAE anneals over the whole run (anneal_start = warm-up end); PGAE keeps lr constant while it
grows, as growing needs, and anneals over its final resolution's stabilisation and anything
after it. "constant": lr throughout (after the same warm-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from featurechanger.training.options import LR_SCHEDULES


@dataclass(frozen=True)
class LearningRate:
    peak: float
    schedule: str  # one of LR_SCHEDULES
    warmup_steps: int
    anneal_start: int  # step at which the cosine decay begins
    total_steps: int

    def __post_init__(self) -> None:
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; valid: "
                             f"{', '.join(LR_SCHEDULES)}")

    def at(self, step: int) -> float:
        """The learning rate of 0-based step `step`."""
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        start = max(self.anneal_start, self.warmup_steps)
        if self.schedule == "constant" or step < start:
            return self.peak
        span = max(1, self.total_steps - start)
        progress = min(1.0, (step - start) / span)
        return self.peak * 0.5 * (1.0 + math.cos(math.pi * progress))
