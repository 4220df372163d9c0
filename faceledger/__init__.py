"""faceledger: self-hosted face recognition that can be held to account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faceledger.errors import FaceledgerError, InvalidImageError, NoFaceDetected

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # The engine's imports (dlib, ONNX Runtime) take a third of a second: only on first use, so
    # `faceledger --help` and other light commands answer at once.
    if name in ("Box", "Face", "FaceEngine", "Match"):
        import faceledger.vision

        return getattr(faceledger.vision, name)
    raise AttributeError(f"module 'faceledger' has no attribute {name!r}")
