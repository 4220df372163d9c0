"""Bytes in, RGB array out: formats, EXIF orientation, size limits, clear errors (and the
small JPEGs that go back out)."""

from faceledger.imaging.decode import (
    ImageLimits,
    decode_image,
    load_image,
    peek_size,
    read_image_file,
    sha256_hex,
)
from faceledger.imaging.encode import encode_jpeg

__all__ = [
    "ImageLimits",
    "decode_image",
    "encode_jpeg",
    "load_image",
    "peek_size",
    "read_image_file",
    "sha256_hex",
]
