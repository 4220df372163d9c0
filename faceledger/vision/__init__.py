"""The face engine: detect, landmarks, align, quality, embed, compare. No storage, no HTTP."""

from faceledger.vision.engine import FaceEngine
from faceledger.vision.quality import QualityLevel, QualityReason, gate_reasons
from faceledger.vision.similarity import Calibration, distance_to_similarity
from faceledger.vision.types import Box, Face, Match, Point, Pose, Quality

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
