"""Decode untrusted image bytes into an RGB ``uint8`` array of shape (height, width, 3).

Every limit is checked from the header before the pixels are decoded, so a decompression bomb
(a small file that claims a huge canvas) is refused without allocating its canvas.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger.errors import InputNotFoundError, InvalidImageError
from faceledger.imaging.jpeg import read_layout

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})


@dataclass(frozen=True)
class ImageLimits:
    """What an accepted image may be. Defaults follow Amazon Rekognition's documented limits,
    except the byte size, which is Rekognition's S3 limit rather than its 5 MB inline limit."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 80

    @classmethod
    def from_settings(cls) -> ImageLimits:
        from faceledger.config import get_settings

        s = get_settings()
        return cls(s.max_image_bytes, s.max_image_pixels, s.min_image_side)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image(source: str | Path | bytes, limits: ImageLimits | None = None) -> np.ndarray:
    """Read an image from a path or bytes; see :func:`decode_image`."""
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), limits)
    limits = limits or ImageLimits()
    return decode_image(read_image_file(Path(source), limits), limits)


def read_image_file(path: Path, limits: ImageLimits) -> bytes:
    """An image file's bytes; a file larger than any accepted image is refused before it is
    read into memory."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputNotFoundError(f"no such file: {path}") from None
    if path.is_dir():
        raise InvalidImageError("UNSUPPORTED_FORMAT", f"{path} is a folder, not an image file")
    if size > limits.max_bytes:
        raise _too_large(size, limits)
    return path.read_bytes()


def peek_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header claims, without decoding; None if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Exception:  # unreadable: decoding says why
        return None


def decode_image(data: bytes, limits: ImageLimits | None = None) -> np.ndarray:
    """Decode image bytes to RGB ``uint8`` (height, width, 3), EXIF orientation applied.

    Accepts JPEG, PNG, WebP, BMP, TIFF and GIF (first frame). Grayscale, palette, CMYK, 16-bit
    and alpha images are converted; transparent pixels are laid over white.
    Raises :class:`InvalidImageError` with code EMPTY, UNSUPPORTED_FORMAT, TRUNCATED, TOO_LARGE,
    TOO_MANY_PIXELS or TOO_SMALL.
    """
    limits = limits or ImageLimits()
    if not data:
        raise InvalidImageError("EMPTY", "the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise _too_large(len(data), limits)
    image = _open_checked(data, limits)
    if image.format in {"JPEG", "MPO"}:
        _check_jpeg_data(data)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(
            "TRUNCATED", f"the {image.format} image is truncated or corrupt ({exc})"
        ) from None
    except Exception:  # Pillow's plugins raise other kinds too on malformed files (fuzzing)
        raise InvalidImageError(
            "TRUNCATED", f"the {image.format} image is corrupt: its structure cannot be read"
        ) from None
    image = _apply_orientation(image)
    try:
        return _to_rgb_array(image)
    except Exception:
        raise InvalidImageError(
            "UNSUPPORTED_FORMAT",
            f"the {image.format} image's pixel format ({image.mode}) cannot be converted to RGB",
        ) from None


def format_bytes(size: int) -> str:
    """Sizes in binary units, as the README states its limits ("15 MiB")."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _too_large(size: int, limits: ImageLimits) -> InvalidImageError:
    return InvalidImageError(
        "TOO_LARGE",
        f"the image is {format_bytes(size)}; the limit is {format_bytes(limits.max_bytes)}",
    )


# Leading bytes of the accepted formats: a file that starts like one but that Pillow cannot
# open is a damaged image of that format, not an unknown format.
SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in SIGNATURES if data.startswith(magic)), None)


def _check_jpeg_data(data: bytes) -> None:
    layout = read_layout(data)
    if layout is None:
        return  # the decoder reports what is wrong with it
    if layout.arithmetic:
        raise InvalidImageError(
            "UNSUPPORTED_FORMAT",
            "arithmetic-coded JPEG is not accepted (its size cannot be checked before "
            "decoding); send a baseline or progressive JPEG",
        )
    if not layout.holds_claimed_size:
        raise InvalidImageError(
            "TRUNCATED",
            f"the JPEG claims {layout.width}x{layout.height} pixels but holds "
            f"{layout.entropy_bytes} bytes of image data, too few for that size "
            f"(at least {layout.minimum_bytes} are needed): truncated, or its header lies",
        )


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        # Pillow's own guard fires first for claims far beyond any sane limit.
        claimed = str(exc).split("(")[1].split(" ")[0] if "(" in str(exc) else "too many"
        raise InvalidImageError(
            "TOO_MANY_PIXELS",
            f"the image claims {claimed} pixels; the limit is "
            f"{limits.max_pixels / 1e6:.1f} megapixels",
        ) from None
    except UnidentifiedImageError:
        kind = _sniff(data)
        if kind is not None:
            raise InvalidImageError(
                "TRUNCATED", f"the data starts as a {kind} image but is corrupt or truncated"
            ) from None
        raise InvalidImageError(
            "UNSUPPORTED_FORMAT",
            "not a recognised image; send JPEG, PNG, WebP, BMP, TIFF or GIF",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError("TRUNCATED", f"the image header is unreadable ({exc})") from None
    except Exception:  # other kinds from Pillow's plugins on malformed headers (fuzzing)
        raise InvalidImageError("TRUNCATED", "the image header is unreadable") from None
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImageError(
            "UNSUPPORTED_FORMAT",
            f"{image.format} images are not accepted; send JPEG, PNG, WebP, BMP, TIFF or GIF",
        )
    width, height = image.size
    if width * height > limits.max_pixels:
        raise InvalidImageError(
            "TOO_MANY_PIXELS",
            f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:.1f} megapixels",
        )
    if min(width, height) < limits.min_side:
        raise InvalidImageError(
            "TOO_SMALL",
            f"the image is {width}x{height}; both sides must be at least {limits.min_side} px",
        )
    return image


def _apply_orientation(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:
        # A damaged EXIF block should not cost the picture; it is shown as stored.
        return image


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        gray = _high_depth_to_uint8(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    # One copy out of Pillow, not three: a 40-megapixel image is 120 MB as RGB.
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(rgb, dtype=np.uint8)
    rgb.close()
    return np.ascontiguousarray(array)


def _high_depth_to_uint8(values: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    # Mode "I" and "F" do not say their range, so it is read off the samples.
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if sixteen_bit or top > 255.0:
        scale = 255.0 / 65535.0
    elif is_float and top <= 1.0:
        scale = 255.0
    else:
        scale = 1.0
    return np.clip(values * scale + 0.5, 0, 255).astype(np.uint8)
