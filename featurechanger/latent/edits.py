"""Edits in latent space.

Fixed (`--strength S`): z' = z + s * (sum of added vectors - sum of removed vectors), the same
move for every face.

Adaptive (`--margin K`): each face moves along each edited attribute's vector v by its own
amount t: just far enough that its discriminant score w . z' (Fisher's linear discriminant,
recorded with the vector, see featurechanger.latent.vectors) lies K within-class spreads past
the mean score of the class it is moved to (below the negatives' mean to remove, above the
positives' mean to add; a negative K stops short of it); a face already there is not moved.
A fixed strength moves a face whose glasses barely show as far as one whose glasses dominate
its latent, so one is dragged too far (and everything correlated with the vector with it)
while the other stays short; the adaptive move uses the best linear evidence of how much of
the attribute each face has. Several attributes are moved one after the other, in the order
removed then added, each by its own margin where the spec names one (`margins`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from featurechanger.attributes import canonical_attribute
from featurechanger.errors import ConfigError
from featurechanger.latent.vectors import AttributeVector, VectorSet

DEFAULT_STRENGTH = 1.5
# What an edit does when neither --strength nor --margin is given: an adaptive edit to two
# within-class spreads past the other class's mean, where a Gaussian class has 2.3% of its
# faces. On a validation set (docs/CHOOSING-THE-EDIT.md) it beat the fixed 1.5 on success,
# preservation and Male kept at once, for removing glasses and adding blond hair.
DEFAULT_MARGIN: float | None = 2.0
# The default of a removal composed inside the removed object's band (`blend` output): there
# the band and its refiner remove the object and decode(z') need only lack it, so moving
# further adds no success and costs Male and the other attributes. Half a spread short of the
# other class's mean: chosen on two validation sets by a rule fixed first, tied with -1 and
# taken for its higher success (docs/CHOOSING-THE-EDIT.md, "The amount of a banded removal,
# chosen again").
BANDED_REMOVAL_MARGIN = -0.5


@dataclass(frozen=True)
class AdditionDefault:
    """How an attribute is added by default: its margin, and whether the blend also keeps the
    decoder's changes fainter than its own reconstruction error (render.compose)."""

    margin: float
    faint_changes: bool = False


# The additions validated one by one, where the common default failed: the latent barely
# separates smiling faces (their classes' means are 1.2 spreads apart, blond hair's 4.3), so
# the decoder draws a smile only after a long move, and then mostly below its own error,
# where the blend keeps the photo. Chosen on two validation sets: the smallest margin at which
# the addition succeeds on 80% (the lower 95% bound) with the DCAE and the PGAE, in the
# composition that keeps Male and the other attributes best there. Blond_Hair passed with the
# common default (its faint changes are sex cues). docs/CHOOSING-THE-EDIT.md, "The additions".
ADDITION_DEFAULTS: dict[str, AdditionDefault] = {
    "Smiling": AdditionDefault(8.0, faint_changes=True),
}


@dataclass(frozen=True)
class EditSpec:
    """Which attributes to add and remove, and how far to move (in units of their vectors)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    strength: float = DEFAULT_STRENGTH
    margin: float | None = None  # adaptive edit: score spreads past the target class's mean
    margins: tuple[tuple[str, float], ...] = ()  # added attributes' own margins, if not `margin`

    @classmethod
    def parse(cls, add: Iterable[str] = (), remove: Iterable[str] = (),
              strength: float = DEFAULT_STRENGTH, margin: float | None = None,
              addition_margins: Mapping[str, float] | None = None) -> "EditSpec":
        """Check user input: known names, at least one, none both added and removed.

        `addition_margins` gives added attributes their own margin (an adaptive edit's
        `margin` applies to the others); entries for attributes not added are ignored.
        """
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
        for value in [margin, *(addition_margins or {}).values()]:
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"--margin must be a finite number of within-class spreads, "
                                  f"got {value!r}.")
        own = {canonical_attribute(name): float(value)
               for name, value in (addition_margins or {}).items()}
        if own and margin is None:
            raise ConfigError("Per-attribute margins need a --margin for the other attributes.")
        return cls(added, removed, float(strength), None if margin is None else float(margin),
                   tuple((name, own[name]) for name in added if name in own))

    @property
    def adaptive(self) -> bool:
        return self.margin is not None

    def margin_for(self, name: str) -> float | None:
        """The adaptive margin of one edited attribute."""
        return dict(self.margins).get(name, self.margin)

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.add + self.remove

    def describe(self) -> str:
        """e.g. 'remove Eyeglasses, add Smiling at strength 1.5', or with an attribute's own
        margin 'remove Eyeglasses to 0.5 spreads short of ..., add Smiling to 8 spreads past
        ...'."""
        parts = [f"remove {name}" for name in self.remove] + [f"add {name}" for name in self.add]
        if not self.adaptive:
            return f"{', '.join(parts)} at strength {self.strength:g}"
        if not self.margins:
            return f"{', '.join(parts)} {_margin_words(self.margin)}"
        names = self.remove + self.add
        return ", ".join(f"{part} {_margin_words(self.margin_for(name))}"
                         for part, name in zip(parts, names))

    def to_json(self) -> dict:
        return {"add": list(self.add), "remove": list(self.remove), "strength": self.strength,
                "margin": self.margin, "margins": dict(self.margins)}

    @classmethod
    def from_json(cls, payload: dict) -> "EditSpec":
        return cls.parse(payload.get("add", ()), payload.get("remove", ()), payload["strength"],
                         payload.get("margin"), payload.get("margins"))


def _margin_words(margin: float) -> str:
    """e.g. 'to 2 spreads past the other class's mean', 'to 0.5 spreads short of ...'."""
    side = "past" if margin >= 0 else "short of"
    return f"to {abs(margin):g} spreads {side} the other class's mean"


def edit_amount(strength: float | None, margin: float | None, *, banded_removal: bool = False
                ) -> tuple[float, float | None, dict[str, float]]:
    """(strength, margin, addition_margins) for EditSpec.parse from --strength and --margin.

    --strength S is a fixed edit, --margin K an adaptive one; neither is the default edit,
    which moves less for a removal composed in its object's band (editing.bands.is_banded)
    and adds the attributes of ADDITION_DEFAULTS by their own margins.
    """
    if strength is not None and margin is not None:
        raise ConfigError(f"Give --strength ({strength!r}, a fixed move) or --margin "
                          f"({margin!r}, an adaptive move), not both.")
    if strength is not None:
        return strength, None, {}
    if margin is not None:
        return DEFAULT_STRENGTH, margin, {}
    return (DEFAULT_STRENGTH, BANDED_REMOVAL_MARGIN if banded_removal else DEFAULT_MARGIN,
            {name: default.margin for name, default in ADDITION_DEFAULTS.items()})


def keeps_faint_changes(spec: EditSpec) -> bool:
    """Whether the blend of this edit keeps the decoder's faint changes: an addition of an
    attribute that ADDITION_DEFAULTS marks so (a removal's faint changes would keep a ghost of
    the removed object, see render.compose)."""
    return not spec.remove and any(
        name in ADDITION_DEFAULTS and ADDITION_DEFAULTS[name].faint_changes for name in spec.add)


def edit_direction(vectors: VectorSet, spec: EditSpec) -> np.ndarray:
    """(D,) float32: the sum of the added vectors minus the sum of the removed ones."""
    signed = [(name, 1.0) for name in spec.add] + [(name, -1.0) for name in spec.remove]
    return np.sum([sign * vectors.vector(name).values for name, sign in signed],
                  axis=0).astype(np.float32)


def apply_edit(latents: np.ndarray, direction: np.ndarray, strength: float) -> np.ndarray:
    """z' = z + s * direction, for latents (N, D) or (D,)."""
    return np.asarray(latents, dtype=np.float32) + np.float32(strength) * direction


def edit_latents(latents: np.ndarray, vectors: VectorSet, spec: EditSpec) -> np.ndarray:
    """The edited latents (N, D) float32 of `spec`: fixed or adaptive (see the module doc)."""
    if not spec.adaptive:
        return apply_edit(latents, edit_direction(vectors, spec), spec.strength)
    edited = np.array(latents, dtype=np.float64, ndmin=2)
    for name, sign in [(name, -1.0) for name in spec.remove] + [(name, 1.0) for name in spec.add]:
        edited = move_to_class(edited, vectors.vector(name), sign, spec.margin_for(name))
    return edited.astype(np.float32).reshape(np.shape(latents))


def move_to_class(latents: np.ndarray, vector: AttributeVector, sign: float,
                  margin: float) -> np.ndarray:
    """Move each latent along the vector until its discriminant score is `margin` spreads past
    the mean score of the positives (sign +1, adding) or of the negatives (sign -1, removing)."""
    if vector.discriminant is None or not math.isfinite(vector.spread):
        raise ConfigError(
            f"The vector of {vector.attribute!r} has no recorded discriminant, which an "
            "adaptive edit (--margin) needs: recompute the vector set with `featurechanger "
            "vectors --run RUN` (every image, not --per-attribute), or use --strength.")
    discriminant = vector.discriminant.astype(np.float64)
    gain = float(discriminant @ vector.values)  # score change per unit move along v (> 0)
    class_mean = vector.positive_projection if sign > 0 else vector.negative_projection
    target = class_mean + sign * margin * vector.spread
    amount = np.maximum(sign * (target - latents @ discriminant) / gain, 0.0)  # (N,)
    return latents + sign * amount[:, None] * vector.values.astype(np.float64)[None, :]
