"""The crop a person reviewing a match looks at: the face levelled (eyes on a horizontal line),
centred, with hair and chin in view — more context than the network's tight chip, since a
reviewer compares hairline, ears and face shape too."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from faceledger.vision.types import Box, Face, Point

REVIEW_CROP_SIZE = 150
# The crop spans this many times the larger side of the detector's box.
CONTEXT = 1.7


def review_crop(rgb: np.ndarray, face: Face, size: int = REVIEW_CROP_SIZE) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop of ``face`` in ``rgb``, rotated so the eyes are level;
    black where the crop runs past the image's edge."""
    return box_crop(rgb, face.box, size, _eye_line_angle(face))


def box_crop(
    rgb: np.ndarray, box: Box, size: int = REVIEW_CROP_SIZE, angle: float = 0.0
) -> np.ndarray:
    """The same crop from a face's box alone (``angle``: of its eye line, when known)."""
    centre = np.array([box.center.x, box.center.y])
    side = CONTEXT * max(box.width, box.height, 1.0)
    scale = side / size  # image pixels per crop pixel
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # Pillow maps each output pixel (x, y) to the input (a x + b y + c, d x + e y + f).
    half = size / 2
    c = centre[0] - cos * half + sin * half
    f = centre[1] - sin * half - cos * half
    image = Image.fromarray(rgb).transform(
        (size, size),
        Image.Transform.AFFINE,
        (cos, -sin, c, sin, cos, f),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(image)


def _eye_line_angle(face: Face) -> float:
    """The angle of the line from the image-left eye to the image-right eye (0 when level);
    0 when the face has no points to tell by."""
    eyes = _eye_centres(face)
    if eyes is None:
        return 0.0
    left, right = eyes
    return math.atan2(right.y - left.y, right.x - left.x)


def _eye_centres(face: Face) -> tuple[Point, Point] | None:
    if len(face.keypoints) >= 2:  # YuNet: image-left eye first
        return face.keypoints[0], face.keypoints[1]
    if len(face.landmarks) == 5:  # dlib: 0-1 one eye's corners, 2-3 the other's
        a, b = _mean(face.landmarks[0:2]), _mean(face.landmarks[2:4])
        return (a, b) if a.x <= b.x else (b, a)
    return None


def _mean(points: tuple[Point, ...]) -> Point:
    return Point(sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points))
