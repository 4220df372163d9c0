from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from faceledger.imaging import load_image
from faceledger.vision import FaceEngine, Point, Pose, Quality, QualityLevel, QualityReason
from faceledger.vision.quality import (
    _MODEL_POINTS,
    brightness,
    estimate_pose,
    gate_reasons,
    score_to_confidence,
    sharpness,
)
from faceledger.vision.types import Box


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = map(math.radians, (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, -20, 0), (0, 0, 15), (-25, 10, -12)])
def test_pose_recovers_known_rotations(angles: tuple[float, float, float]) -> None:
    projected = (_MODEL_POINTS @ rotation(*angles).T)[:, :2] * 45 + 120
    pose = estimate_pose(tuple(Point(*p) for p in projected))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=0.05)


def test_roll_follows_an_image_rotation(engine: FaceEngine, obama_bytes: bytes) -> None:
    upright = engine.detect(obama_bytes)[0].quality.pose.roll
    tilted_image = Image.fromarray(load_image(obama_bytes)).rotate(20, expand=True)
    tilted = engine.detect(np.asarray(tilted_image))[0].quality.pose.roll
    # PIL rotates counter-clockwise, so the eye line rises to the right: roll falls by 20.
    assert tilted - upright == pytest.approx(-20, abs=3)


def test_sharpness_drops_with_blur(engine: FaceEngine, obama_bytes: bytes) -> None:
    image = Image.fromarray(load_image(obama_bytes))
    sharp = engine.detect(np.asarray(image))[0].quality.sharpness
    blurred = engine.detect(np.asarray(image.filter(ImageFilter.GaussianBlur(6))))
    assert sharp > 50
    assert blurred and blurred[0].quality.sharpness < sharp / 3


def test_brightness_and_sharpness_scales() -> None:
    box = Box(0, 0, 50, 50)
    assert brightness(np.zeros((50, 50, 3), np.uint8), box) == 0
    assert brightness(np.full((50, 50, 3), 255, np.uint8), box) == pytest.approx(100)
    assert brightness(np.zeros((50, 50, 3), np.uint8), Box(80, 80, 5, 5)) == 0  # outside
    assert sharpness(np.full((150, 150, 3), 90, np.uint8)) == 0
    noise = np.random.default_rng(0).integers(0, 255, (150, 150, 3)).astype(np.uint8)
    assert sharpness(noise) > 99


def test_confidence_map() -> None:
    assert score_to_confidence(0) == 50
    assert score_to_confidence(1) == pytest.approx(95.26, abs=0.01)
    assert score_to_confidence(-1) < 50 < score_to_confidence(0.1)


def quality(**changes: float) -> Quality:
    values = {"brightness": 50.0, "sharpness": 60.0, "face_size": 150.0, "confidence": 99.0}
    pose = Pose(changes.pop("yaw", 0.0), changes.pop("pitch", 0.0), 0.0)
    values.update(changes)
    return Quality(pose=pose, **values)


def test_gate_passes_a_good_face_at_every_level() -> None:
    for level in QualityLevel:
        assert gate_reasons(quality(), level) == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"face_size": 30}, QualityReason.SMALL_BOUNDING_BOX),
        ({"brightness": 3}, QualityReason.LOW_BRIGHTNESS),
        ({"brightness": 99.5}, QualityReason.LOW_BRIGHTNESS),
        ({"sharpness": 2}, QualityReason.LOW_SHARPNESS),
        ({"yaw": 70}, QualityReason.EXTREME_POSE),
        ({"pitch": -50}, QualityReason.EXTREME_POSE),
        ({"confidence": 40}, QualityReason.LOW_CONFIDENCE),
    ],
)
def test_gate_names_the_reason(change: dict[str, float], reason: QualityReason) -> None:
    bad = quality(**change)
    assert gate_reasons(bad, QualityLevel.NONE) == ()
    for level in (QualityLevel.LOW, QualityLevel.MEDIUM, QualityLevel.HIGH, QualityLevel.AUTO):
        assert gate_reasons(bad, level) == (reason,)


def test_levels_are_nested() -> None:
    borderline = quality(face_size=70, sharpness=15, yaw=40)
    assert gate_reasons(borderline, "LOW") == ()
    assert gate_reasons(borderline, "MEDIUM") == ()
    assert set(gate_reasons(borderline, "HIGH")) == {
        QualityReason.SMALL_BOUNDING_BOX,
        QualityReason.LOW_SHARPNESS,
        QualityReason.EXTREME_POSE,
    }
