"""faceledger: self-hosted face recognition that can be held to account."""

from faceledger.errors import FaceledgerError, InvalidImageError, NoFaceDetected
from faceledger.vision import Box, Face, FaceEngine, Match

__version__ = "0.1.0"
__all__ = [
    "Box",
    "Face",
    "FaceEngine",
    "FaceledgerError",
    "InvalidImageError",
    "Match",
    "NoFaceDetected",
    "__version__",
]
