"""The face engine: detect, landmarks, align, quality, embed, compare. No storage, no HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faceledger.vision.quality import QualityLevel, QualityReason, gate_reasons
from faceledger.vision.similarity import Calibration, distance_to_similarity
from faceledger.vision.types import Box, Face, Match, Point, Pose, Quality

if TYPE_CHECKING:
    from faceledger.vision.engine import FaceEngine

__all__ = [
    "Box",
    "Calibration",
    "Face",
    "FaceEngine",
    "Match",
    "Point",
    "Pose",
    "Quality",
    "QualityLevel",
    "QualityReason",
    "distance_to_similarity",
    "gate_reasons",
]


def __getattr__(name: str) -> Any:
    # FaceEngine's module imports dlib and ONNX Runtime (a third of a second): on first use.
    if name == "FaceEngine":
        from faceledger.vision.engine import FaceEngine

        return FaceEngine
    raise AttributeError(f"module 'faceledger.vision' has no attribute {name!r}")
