"""Labelled sheets of images: the feature grid (images x attributes) and before/after sheets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from featurechanger.render.images import enlarge, save_image

CELL = 96  # pixels per cell: a 32 px face shown 3x, big enough to judge an edit
LABEL_HEIGHT = 22
ROW_LABEL_WIDTH = 90
GAP = 2
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def labelled_sheet(rows: Sequence[Sequence[np.ndarray]], column_labels: Sequence[str],
                   row_labels: Sequence[str] | None = None, *, cell: int = CELL) -> Image.Image:
    """A grid of images (each (H, W, 3) uint8 or [0, 1] float) with a label over each column.

    Every image is scaled to fit a `cell`-pixel square; row labels, when given, go on the left.
    """
    if not rows or any(len(row) != len(column_labels) for row in rows):
        raise ValueError(f"every row needs {len(column_labels)} images, one per column label")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} row labels")
    left = ROW_LABEL_WIDTH if row_labels is not None else 0
    width = left + len(column_labels) * (cell + GAP) + GAP
    height = LABEL_HEIGHT + len(rows) * (cell + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for column, label in enumerate(column_labels):
        x = left + GAP + column * (cell + GAP)
        draw.text((x + cell / 2, LABEL_HEIGHT / 2), _fit(draw, label, font, cell), fill=INK,
                  font=font, anchor="mm")
    for index, row in enumerate(rows):
        y = LABEL_HEIGHT + GAP + index * (cell + GAP)
        if row_labels is not None:
            draw.text((GAP, y + cell / 2), _fit(draw, row_labels[index], font, left - GAP),
                      fill=INK, font=font, anchor="lm")
        for column, image in enumerate(row):
            tile = Image.fromarray(enlarge(image, cell))
            x = left + GAP + column * (cell + GAP)
            sheet.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
    return sheet


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """The text, shortened with an ellipsis until it fits `width` pixels."""
    while len(text) > 1 and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    return text


def save_sheet(sheet: Image.Image, path: Path) -> Path:
    return save_image(np.asarray(sheet), path)


def feature_grid(originals: np.ndarray, reconstructions: np.ndarray,
                 edits: dict[str, np.ndarray], image_ids: Sequence[str]) -> Image.Image:
    """The seed's feature grid: a row per image; original, reconstruction, then one edit each.

    originals, reconstructions: (N, R, R, 3); edits: column label -> (N, R, R, 3).
    """
    labels = ["original", "reconstruction", *edits]
    rows = [[originals[i], reconstructions[i], *(edited[i] for edited in edits.values())]
            for i in range(len(originals))]
    return labelled_sheet(rows, labels, list(image_ids))
