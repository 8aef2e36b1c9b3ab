"""The band of the eyes, placed from a face's landmarks, where glasses edits are judged.

The band follows adult anthropometry, not any one dataset: a spectacle frame is about 2.2
times the distance between the pupils wide (frames ~140 mm, pupils ~63 mm apart) and a lens
with its rim about 0.8 times that distance high, centred on the eye line.
"""

from __future__ import annotations

import numpy as np

BAND_WIDTH = 2.2  # in units of the distance between the eyes
BAND_HEIGHT = 0.8

Box = tuple[int, int, int, int]


def eye_band(landmarks: np.ndarray, width: int, height: int) -> Box:
    """(left, top, right, bottom) of the eye band in a width x height photo.

    landmarks: CelebA's 10 values (left eye x, y, right eye x, y, nose, mouth corners) in the
    photo's pixels.
    """
    left_eye = np.asarray(landmarks[0:2], dtype=np.float64)
    right_eye = np.asarray(landmarks[2:4], dtype=np.float64)
    centre = (left_eye + right_eye) / 2
    distance = float(np.linalg.norm(right_eye - left_eye))
    half_width, half_height = BAND_WIDTH * distance / 2, BAND_HEIGHT * distance / 2
    return (max(0, round(centre[0] - half_width)), max(0, round(centre[1] - half_height)),
            min(width, round(centre[0] + half_width)), min(height, round(centre[1] + half_height)))
