"""The engine's result types: frozen dataclasses over plain numbers and numpy arrays.

Box convention, everywhere in faceledger: pixel coordinates in the image *after* EXIF orientation
has been applied, origin at the top-left corner, ``left``/``top`` of the first pixel inside the
box, ``width``/``height`` in pixels. ``right = left + width`` is one past the last pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

# The five landmarks of dlib's 5-point shape predictor, in its order. Left and right are as seen
# in the image (the viewer's left), not the subject's.
LANDMARK_NAMES: tuple[str, ...] = (
    "eye_right_outer",
    "eye_right_inner",
    "eye_left_outer",
    "eye_left_inner",
    "nose_base",
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A face box in pixels: ``left, top, width, height`` (see the module docstring)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> Point:
        return Point(self.left + self.width / 2, self.top + self.height / 2)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box; 0 when they do not overlap."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.area + other.area - inter)

    def same_face(self, other: Box) -> bool:
        """Whether ``other`` is a detection of the face in this box: its centre lies inside it
        and its width is within a factor of two (detectors draw boxes differently, so this asks
        "is it the same face", not "how tight is the box")."""
        centre = other.center
        inside = self.left <= centre.x <= self.right and self.top <= centre.y <= self.bottom
        return inside and 0.5 <= other.width / self.width <= 2.0

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside an image of the given size."""
        left, top = max(self.left, 0.0), max(self.top, 0.0)
        right, bottom = min(self.right, float(width)), min(self.bottom, float(height))
        return Box(left, top, max(right - left, 0.0), max(bottom - top, 0.0))


@dataclass(frozen=True)
class Pose:
    """Head rotation in degrees, estimated from the 5 landmarks. 0/0/0 faces the camera.

    yaw: positive when the face turns toward the image's right; pitch: positive when it tilts up;
    roll: positive when the line from the image-left eye to the image-right eye descends.
    """

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class Quality:
    """Per-face quality on Rekognition's scales.

    brightness and sharpness are 0-100 (higher is brighter, sharper); face_size is the shorter
    side of the box in pixels; confidence is the detection confidence 0-100.
    """

    brightness: float
    sharpness: float
    face_size: float
    pose: Pose
    confidence: float


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face. ``embedding`` is None until :meth:`FaceEngine.embed` has run.

    ``detector`` names what found the box (``hog``, ``cnn``, or ``given`` for a box the caller
    supplied); ``score`` is that detector's raw score; ``confidence`` is the score mapped to 0-100.
    """

    box: Box
    landmarks: tuple[Point, ...]
    confidence: float
    score: float
    detector: str
    quality: Quality
    embedding: np.ndarray | None = field(default=None, repr=False)
    # YuNet's five points (eyes, nose tip, mouth corners; image left first) where YuNet found
    # the face: what SFace is aligned on.
    keypoints: tuple[Point, ...] = ()

    def with_embedding(self, embedding: np.ndarray) -> Face:
        return replace(self, embedding=embedding)


@dataclass(frozen=True)
class Match:
    """How alike two faces are.

    distance: Euclidean distance between descriptors (lower is more alike; dlib's usual
    threshold is 0.6). similarity: the same fact on 0-100 (higher is more alike), see
    :mod:`faceledger.vision.similarity`. false_match_rate: the share of different-person pairs
    that score at least this similarity, from the shipped calibration; when no calibration
    impostor reached it, this is the 95 % upper bound 3/N and ``fmr_upper_bound`` is True.
    """

    similarity: float
    distance: float
    false_match_rate: float
    fmr_upper_bound: bool = False
