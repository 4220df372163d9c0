"""Pixels out as bytes: the small JPEGs kept for review and shown in the console."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
