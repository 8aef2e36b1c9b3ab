"""Edits in latent space: z' = z + s * (sum of added vectors - sum of removed vectors)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from featurechanger.attributes import canonical_attribute
from featurechanger.errors import ConfigError
from featurechanger.latent.vectors import VectorSet

DEFAULT_STRENGTH = 1.5


@dataclass(frozen=True)
class EditSpec:
    """Which attributes to add and remove, and how far to move (in units of their vectors)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    strength: float = DEFAULT_STRENGTH

    @classmethod
    def parse(cls, add: Iterable[str] = (), remove: Iterable[str] = (),
              strength: float = DEFAULT_STRENGTH) -> "EditSpec":
        """Check user input: known names, at least one, none both added and removed."""
        added = tuple(dict.fromkeys(canonical_attribute(name) for name in add))
        removed = tuple(dict.fromkeys(canonical_attribute(name) for name in remove))
        if not added and not removed:
            raise ConfigError("Nothing to edit: give at least one --add ATTR or --remove ATTR.")
        both = sorted(set(added) & set(removed))
        if both:
            raise ConfigError(f"{both[0]!r} is both added and removed; choose one of the two.")
        if not math.isfinite(strength) or strength < 0:
            raise ConfigError(f"--strength must be a finite number >= 0 (the edit's direction "
                              f"comes from --add/--remove), got {strength!r}.")
        return cls(added, removed, float(strength))

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.add + self.remove

    def describe(self) -> str:
        """e.g. 'remove Eyeglasses, add Smiling at strength 1.5'."""
        parts = [f"remove {name}" for name in self.remove] + [f"add {name}" for name in self.add]
        return f"{', '.join(parts)} at strength {self.strength:g}"

    def to_json(self) -> dict:
        return {"add": list(self.add), "remove": list(self.remove), "strength": self.strength}

    @classmethod
    def from_json(cls, payload: dict) -> "EditSpec":
        return cls.parse(payload.get("add", ()), payload.get("remove", ()), payload["strength"])


def edit_direction(vectors: VectorSet, spec: EditSpec) -> np.ndarray:
    """(D,) float32: the sum of the added vectors minus the sum of the removed ones."""
    signed = [(name, 1.0) for name in spec.add] + [(name, -1.0) for name in spec.remove]
    return np.sum([sign * vectors.vector(name).values for name, sign in signed],
                  axis=0).astype(np.float32)


def apply_edit(latents: np.ndarray, direction: np.ndarray, strength: float) -> np.ndarray:
    """z' = z + s * direction, for latents (N, D) or (D,)."""
    return np.asarray(latents, dtype=np.float32) + np.float32(strength) * direction
