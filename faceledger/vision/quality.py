"""Per-face quality and the quality gate.

Scales follow Amazon Rekognition: brightness and sharpness 0-100, pose in degrees. The gate
levels NONE, LOW, MEDIUM, HIGH and AUTO drop faces with Rekognition's reason codes, and every
dropped face says which thresholds it missed. The thresholds are in :data:`GATE_THRESHOLDS`
and the README explains them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from faceledger.vision.types import Box, Point, Pose, Quality

# A generic face's five landmarks in 3D, in units of the distance between the eye centres:
# x toward the image's right, y down, z toward the camera. The outer eye corners sit behind the
# inner ones and the base of the nose in front of them (average adult anthropometry).
_MODEL_POINTS = np.array(
    [
        [0.70, 0.0, -0.20],  # eye_right_outer
        [0.30, 0.0, 0.00],  # eye_right_inner
        [-0.70, 0.0, -0.20],  # eye_left_outer
        [-0.30, 0.0, 0.00],  # eye_left_inner
        [0.00, 0.92, 0.30],  # nose_base
    ]
)
_MODEL_CENTERED = _MODEL_POINTS - _MODEL_POINTS.mean(axis=0)

# Variance of the Laplacian of a 150x150 gray chip at which sharpness reads 63 (1 - 1/e);
# chosen so that the median LFW face (250 px news photos) reads about 50.
_SHARPNESS_SCALE = 50.0


class QualityLevel(StrEnum):
    NONE = "NONE"
    AUTO = "AUTO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class QualityReason(StrEnum):
    LOW_SHARPNESS = "LOW_SHARPNESS"
    LOW_BRIGHTNESS = "LOW_BRIGHTNESS"
    SMALL_BOUNDING_BOX = "SMALL_BOUNDING_BOX"
    EXTREME_POSE = "EXTREME_POSE"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"


@dataclass(frozen=True)
class GateThresholds:
    min_face_size: float  # px, shorter side of the box
    min_brightness: float  # 0-100
    max_brightness: float  # 0-100; a blown-out face is as unusable as a dark one
    min_sharpness: float  # 0-100
    max_abs_yaw: float  # degrees
    max_abs_pitch: float  # degrees
    min_confidence: float  # 0-100


GATE_THRESHOLDS: dict[QualityLevel, GateThresholds] = {
    QualityLevel.LOW: GateThresholds(40, 8, 98, 4, 60, 45, 50),
    QualityLevel.MEDIUM: GateThresholds(60, 15, 95, 8, 45, 35, 60),
    QualityLevel.HIGH: GateThresholds(90, 25, 90, 20, 30, 25, 75),
}
# AUTO is what Rekognition's IndexFaces applies when no filter is named; here it is MEDIUM.
GATE_THRESHOLDS[QualityLevel.AUTO] = GATE_THRESHOLDS[QualityLevel.MEDIUM]


def score_to_confidence(score: float) -> float:
    """Map a dlib detector score (decision threshold 0) to 0-100.

    A logistic with its midpoint at the detector's own threshold: 0 -> 50, 0.5 -> 82,
    1 -> 95, 2 -> 99.8. It orders detections; it is not a calibrated probability.
    """
    return 100.0 / (1.0 + math.exp(-3.0 * score))


def brightness(image: np.ndarray, box: Box) -> float:
    """Mean luma (Rec. 601) inside the box, 0 (black) to 100 (white)."""
    height, width = image.shape[:2]
    b = box.clipped(width, height)
    if b.area <= 0:
        return 0.0
    region = image[int(b.top) : math.ceil(b.bottom), int(b.left) : math.ceil(b.right)]
    luma = region[..., 0] * 0.299 + region[..., 1] * 0.587 + region[..., 2] * 0.114
    return float(luma.mean() / 255.0 * 100.0)


def sharpness(chip: np.ndarray) -> float:
    """Focus measure 0-100 on the aligned face chip, so that it does not depend on face size.

    The variance of the 4-neighbour Laplacian of the gray chip, squashed by 1 - exp(-v / 50).
    Measured: a sharp 1000 px portrait reads 100, LFW's 250 px news photos 18-70 (median ~50);
    a Gaussian blur of sigma 1 px on an LFW face brings it to ~14, of 2 px to ~5.
    """
    gray = chip[..., 0] * 0.299 + chip[..., 1] * 0.587 + chip[..., 2] * 0.114
    lap = (
        gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4.0 * gray[1:-1, 1:-1]
    )
    return float(100.0 * (1.0 - math.exp(-float(lap.var()) / _SHARPNESS_SCALE)))


def estimate_pose(landmarks: tuple[Point, ...]) -> Pose:
    """Yaw, pitch and roll in degrees from the 5 landmarks.

    Fits a weak-perspective (scaled orthographic) camera to a generic 3D face by least squares
    and reads the angles off the rotation. Five points constrain depth weakly, so expect errors
    of several degrees; it separates frontal from turned faces, which is what the gate needs.
    """
    image_points = np.array([[p.x, p.y] for p in landmarks], dtype=np.float64)
    centered = image_points - image_points.mean(axis=0)
    affine, *_ = np.linalg.lstsq(_MODEL_CENTERED, centered, rcond=None)  # 3x2
    if not np.all(np.isfinite(affine)) or np.linalg.matrix_rank(affine) < 2:
        return Pose(0.0, 0.0, 0.0)
    # The nearest pair of orthonormal rows to the fitted projection (orthogonal Procrustes),
    # which, unlike Gram-Schmidt, turns exactly with an in-plane rotation of the image.
    u, _, vt = np.linalg.svd(affine.T, full_matrices=False)
    r1, r2 = u @ vt
    r3 = np.cross(r1, r2)
    rotation = np.vstack([r1, r2, r3])
    # rotation = Rz(roll) @ Rx(pitch) @ Ry(yaw): turn, then nod, then tilt in the image plane.
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, rotation[2, 1]))))
    yaw = math.degrees(math.atan2(-rotation[2, 0], rotation[2, 2]))
    roll = math.degrees(math.atan2(-rotation[0, 1], rotation[1, 1]))
    return Pose(yaw=round(yaw, 2), pitch=round(pitch, 2), roll=round(roll, 2))


def measure_quality(
    image: np.ndarray, box: Box, landmarks: tuple[Point, ...], chip: np.ndarray, confidence: float
) -> Quality:
    return Quality(
        brightness=round(brightness(image, box), 2),
        sharpness=round(sharpness(chip), 2),
        face_size=float(min(box.width, box.height)),
        pose=estimate_pose(landmarks),
        confidence=round(confidence, 3),
    )


def gate_reasons(quality: Quality, level: QualityLevel | str) -> tuple[QualityReason, ...]:
    """The reasons a face fails the gate at ``level``; empty when it passes (always at NONE)."""
    level = QualityLevel(level)
    if level is QualityLevel.NONE:
        return ()
    t = GATE_THRESHOLDS[level]
    reasons: list[QualityReason] = []
    if quality.face_size < t.min_face_size:
        reasons.append(QualityReason.SMALL_BOUNDING_BOX)
    if not t.min_brightness <= quality.brightness <= t.max_brightness:
        reasons.append(QualityReason.LOW_BRIGHTNESS)
    if quality.sharpness < t.min_sharpness:
        reasons.append(QualityReason.LOW_SHARPNESS)
    if abs(quality.pose.yaw) > t.max_abs_yaw or abs(quality.pose.pitch) > t.max_abs_pitch:
        reasons.append(QualityReason.EXTREME_POSE)
    if quality.confidence < t.min_confidence:
        reasons.append(QualityReason.LOW_CONFIDENCE)
    return tuple(reasons)
