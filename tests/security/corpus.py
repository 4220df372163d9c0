"""The bad-input corpus of the hardening issue, built with Pillow: images that cost a naive
server its memory or its time. Shared by the bounded-cost test and benchmarks/load.py."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

PIXEL_LIMIT = 40_000_000  # the server's default max_image_pixels
SIDE = int(PIXEL_LIMIT**0.5)  # 6324: a square at the limit


def _encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def lying_jpeg(face_photo: Path) -> bytes:
    """A 250x250 JPEG whose header claims 6000x6000."""
    data = bytearray(face_photo.read_bytes())
    frame = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    data[frame + 5 : frame + 9] = struct.pack(">HH", 6000, 6000)
    return bytes(data)


def png_bomb() -> bytes:
    """A few hundred bytes of PNG that claim 20000x20000 pixels."""
    small = _encode(Image.new("L", (100, 100)), "PNG")
    header = bytearray(small)
    header[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width, height (CRC left wrong)
    return bytes(header)


def build(no_face_photo: Path, face_photo: Path, small_photo: Path) -> dict[str, bytes]:
    """``small_photo``: a 250x250 JPEG (an LFW image), for the header that lies."""
    rng = np.random.default_rng(7)
    no_face = Image.open(no_face_photo).convert("RGB").resize((4000, 3000))
    face = Image.open(face_photo).convert("RGB").resize((4000, 3000))
    noise = Image.fromarray(rng.integers(0, 256, (4472, 4472, 3), dtype=np.uint8))
    strip = Image.fromarray(rng.integers(0, 256, (20000, 80, 3), dtype=np.uint8))
    return {
        "blank PNG at the pixel limit": _encode(Image.new("RGB", (SIDE, SIDE), "white"), "PNG"),
        "grey JPEG at the pixel limit": _encode(Image.new("RGB", (SIDE, SIDE), "grey"), "JPEG"),
        "noise JPEG, 20 MP": _encode(noise, "JPEG", quality=25),
        "12 MP photo without a face": _encode(no_face, "JPEG", quality=90),
        "12 MP photo with a face": _encode(face, "JPEG", quality=90),
        "80x20000 strip": _encode(strip, "PNG"),
        "lying JPEG header": lying_jpeg(small_photo),
        "PNG bomb": png_bomb(),
    }
