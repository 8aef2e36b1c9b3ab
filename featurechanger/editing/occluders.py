"""Spectacles drawn over training faces, so that a refiner learns to remove them.

A see-through refiner (featurechanger.editing.refiner) also sees the photo inside the band, so
that it can keep the eyes and eyebrows the glasses do not cover; an occluded one is trained on
the model's reconstructions of faces wearing them. Both train on faces without glasses, to
which these occluders are added; the target is the face without them. They follow
what spectacles are, not any one renderer: two closed rims around the eyes (ellipses to rounded
rectangles, the size of a lens relative to the distance between the pupils), a bridge and two
temple arms, of any colour, thin to thick, opaque or faint, over lenses that range from clear
to dark. Each is drawn at random.
"""

from __future__ import annotations

import torch

# Drawn over this share of training faces; the rest teach the refiner to keep a clean band.
OCCLUDED_SHARE = 0.8
# How opaque a frame is drawn, at random in this range: the range the log's figures were
# measured with (docs/CHOOSING-THE-EDIT.md, "A see-through refiner").
FRAME_OPACITY = (0.5, 1.0)


def draw_spectacles(photos: torch.Tensor, eyes: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
    """photos (B, 3, H, W) floats in [0, 1] with spectacles drawn over OCCLUDED_SHARE of them;
    eyes (B, 2, 2): each face's two pupils (x, y) in pixels of these photos. Drawn on the
    photos' device, from a CPU `generator` (the same spectacles on any device)."""
    batch, _, height, width = photos.shape
    device = photos.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(batch, *shape, generator=generator).to(device)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * rand(*shape)

    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32, device=device) + 0.5,
                            torch.arange(width, dtype=torch.float32, device=device) + 0.5,
                            indexing="ij")
    left, right = _ordered(eyes.float().to(device))
    distance = (right - left).norm(dim=1).clamp(min=1.0)
    half_width = uniform(0.28, 0.5) * distance
    half_height = half_width * uniform(0.55, 1.0)
    roundness = uniform(2.0, 5.0)  # 2: an ellipse; larger: a rounded rectangle
    thickness = uniform(0.4, 2.0)[:, None, None] * width / 64
    lift = uniform(-0.1, 0.1) * distance  # the rims' centres above or below the eyes
    rims, lenses = zip(*(_rim(xs, ys, eye[:, 0], eye[:, 1] + lift, half_width, half_height,
                              roundness, thickness) for eye in (left, right)))
    rise = lift - half_height * uniform(0.0, 0.6)  # the bridge's and arms' height
    reach = uniform(0.3, 0.7) * distance
    bars = _bridge_and_arms(xs, ys, left, right, half_width, rise, reach, thickness)
    frame = torch.stack([*rims, *bars]).amax(0)
    lens = torch.stack(lenses).amax(0)

    drawn = (rand() < OCCLUDED_SHARE).float()[:, None, None]
    tint = uniform(0.0, 1.0) * (rand() < 0.5)
    tint_colour = uniform(0.0, 1.0, 3) * uniform(0.0, 1.0, 1)
    frame_colour = uniform(0.0, 1.0, 3) * uniform(0.1, 1.0, 1)
    frame_alpha = (frame * uniform(*FRAME_OPACITY)[:, None, None] * drawn)[:, None]
    lens_alpha = (lens * tint[:, None, None] * drawn)[:, None]
    out = photos + lens_alpha * (tint_colour[:, :, None, None] - photos)
    return out + frame_alpha * (frame_colour[:, :, None, None] - out)


def _rim(xs: torch.Tensor, ys: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
         half_width: torch.Tensor, half_height: torch.Tensor, roundness: torch.Tensor,
         thickness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rim, lens) coverage (B, H, W) of a superellipse centred at (x, y), each (B,)."""
    a, b, power = (value[:, None, None] for value in (half_width, half_height, roundness))
    dx, dy = (xs - x[:, None, None]) / a, (ys - y[:, None, None]) / b
    radius = (dx.abs() ** power + dy.abs() ** power) ** (1 / power)
    scale = (a * b).sqrt()  # pixels per unit of radius, about
    return _line((radius - 1).abs() * scale, thickness), (0.5 + (1 - radius) * scale).clamp(0, 1)


def _bridge_and_arms(xs: torch.Tensor, ys: torch.Tensor, left: torch.Tensor,
                     right: torch.Tensor, half_width: torch.Tensor, rise: torch.Tensor,
                     reach: torch.Tensor, thickness: torch.Tensor) -> list[torch.Tensor]:
    """Coverage (B, H, W) of the bridge between the rims and of the arms `reach` beyond them,
    all `rise` pixels below the eyes (negative: above)."""
    left_y, right_y = left[:, 1] + rise, right[:, 1] + rise
    inner = (left[:, 0] + half_width, right[:, 0] - half_width)
    outer = (left[:, 0] - half_width, right[:, 0] + half_width)
    segments = [((inner[0], left_y), (inner[1], right_y)),
                ((outer[0], left_y), (outer[0] - reach, left_y)),
                ((outer[1], right_y), (outer[1] + reach, right_y))]
    return [_line(_segment_distance(xs, ys, *ends), thickness) for ends in segments]


def _ordered(eyes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right) pupils (B, 2) by their place in the image."""
    swap = (eyes[:, 0, 0] > eyes[:, 1, 0])[:, None]
    return torch.where(swap, eyes[:, 1], eyes[:, 0]), torch.where(swap, eyes[:, 0], eyes[:, 1])


def _line(distance: torch.Tensor, thickness: torch.Tensor) -> torch.Tensor:
    """Coverage (0-1) of a line `thickness` wide at `distance` pixels from its middle,
    antialiased over a pixel."""
    return (thickness / 2 + 0.5 - distance).clamp(0, 1)


def _segment_distance(xs: torch.Tensor, ys: torch.Tensor, start: tuple[torch.Tensor, ...],
                      end: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(B, H, W) distance of each pixel to each face's segment from `start` to `end`
    ((x, y), each (B,))."""
    x0, y0 = (value[:, None, None] for value in start)
    x1, y1 = (value[:, None, None] for value in end)
    along_x, along_y = x1 - x0, y1 - y0
    length = (along_x ** 2 + along_y ** 2).clamp(min=1e-6)
    share = (((xs - x0) * along_x + (ys - y0) * along_y) / length).clamp(0, 1)
    return torch.hypot(xs - (x0 + share * along_x), ys - (y0 + share * along_y))
