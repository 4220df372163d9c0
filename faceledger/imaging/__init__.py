"""Bytes in, RGB array out: formats, EXIF orientation, size limits, clear errors."""

from faceledger.imaging.decode import (
    ImageLimits,
    decode_image,
    load_image,
    peek_size,
    sha256_hex,
)

__all__ = ["ImageLimits", "decode_image", "load_image", "peek_size", "sha256_hex"]
