from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import InputNotFoundError, InvalidImageError
from faceledger.imaging import ImageLimits, decode_image, load_image
from tests.conftest import SAMPLES, require


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(width: int = 120, height: int = 100) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack(
        [
            np.tile(x, (height, 1)),
            np.full((height, width), 80, np.uint8),
            np.tile(x[::-1], (height, 1)),
        ],
        axis=2,
    )
    return Image.fromarray(rgb, "RGB")


def png_bomb(side: int) -> bytes:
    """A valid grayscale PNG of side x side black pixels, a few hundred KB on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    body = b"".join(compressor.compress(row * 500) for _ in range(side // 500))
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def error_code(data: bytes, limits: ImageLimits | None = None) -> str:
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data, limits)
    assert caught.value.message  # every refusal says why, in words
    return caught.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    array = decode_image(encode(gradient(), fmt))
    assert array.shape == (100, 120, 3)
    assert array.dtype == np.uint8


def test_lossless_round_trip_is_exact() -> None:
    source = gradient()
    assert np.array_equal(decode_image(encode(source, "PNG")), np.asarray(source))


def test_empty() -> None:
    assert error_code(b"") == "EMPTY"


def test_text_file_is_unsupported() -> None:
    assert error_code(b"name,age\nada,36\n" * 20) == "UNSUPPORTED_FORMAT"


def test_format_pillow_reads_but_we_do_not_accept() -> None:
    assert error_code(encode(gradient(), "PPM")) == "UNSUPPORTED_FORMAT"


def test_truncated_jpeg(obama_bytes: bytes) -> None:
    assert error_code(obama_bytes[: len(obama_bytes) // 2]) == "TRUNCATED"


def test_png_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(20_000)
    assert len(bomb) < 2_000_000  # small on disk, 400 megapixels when decoded
    with pytest.raises(InvalidImageError) as caught:
        decode_image(bomb)
    assert caught.value.code == "TOO_MANY_PIXELS"
    assert "400000000 pixels" in caught.value.message
    assert "limit is 40.0 megapixels" in caught.value.message


def test_pixel_limit_is_checked_from_the_header() -> None:
    claim = png_bomb(10_000)  # 100 megapixels: under Pillow's own guard, over ours
    with pytest.raises(InvalidImageError) as caught:
        decode_image(claim)
    assert caught.value.code == "TOO_MANY_PIXELS"
    assert "10000x10000" in caught.value.message


def test_too_small() -> None:
    assert error_code(encode(Image.new("RGB", (10, 10)), "PNG")) == "TOO_SMALL"


def test_too_large_bytes_and_file(tmp_path) -> None:
    data = encode(gradient(), "PNG")
    limits = ImageLimits(max_bytes=len(data) - 1)
    assert error_code(data, limits) == "TOO_LARGE"
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(InvalidImageError, match="TOO_LARGE"):
        load_image(path, limits)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputNotFoundError):
        load_image(tmp_path / "nope.jpg")


def test_exif_orientation_is_applied() -> None:
    source = gradient(160, 100)
    stored = source.rotate(90, expand=True)  # counter-clockwise: what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    decoded = decode_image(encode(stored, "PNG", exif=exif))
    assert decoded.shape == (100, 160, 3)
    assert np.array_equal(decoded, np.asarray(source))


def test_grayscale_becomes_three_equal_channels() -> None:
    gray = decode_image(encode(gradient().convert("L"), "PNG"))
    assert gray.shape == (100, 120, 3)
    assert np.array_equal(gray[..., 0], gray[..., 2])


def test_sixteen_bit_is_scaled() -> None:
    samples = np.full((90, 90), 65535, dtype=np.uint16)
    samples[:, :45] = 257 * 100
    decoded = decode_image(encode(Image.fromarray(samples), "PNG"))
    assert decoded[0, 0, 0] == 100 and decoded[0, -1, 0] == 255


def test_cmyk_jpeg() -> None:
    decoded = decode_image(encode(Image.new("CMYK", (90, 90), (0, 255, 255, 0)), "JPEG"))
    red, green, blue = decoded[45, 45].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_transparency_is_laid_over_white() -> None:
    rgba = Image.new("RGBA", (90, 90), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 45, 90))
    decoded = decode_image(encode(rgba, "PNG"))
    assert decoded[10, 10].tolist() == [255, 0, 0]
    assert decoded[10, 80].tolist() == [255, 255, 255]


def test_palette_with_transparency() -> None:
    palette = Image.new("P", (90, 90), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 45, 90))
    decoded = decode_image(encode(palette, "PNG", transparency=0))
    assert decoded[10, 10].tolist() == [0, 0, 255]
    assert decoded[10, 80].tolist() == [255, 255, 255]


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (90, 90), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data)[0, 0].tolist() == [255, 0, 0]


def test_real_32bit_png() -> None:
    decoded = load_image(require(SAMPLES / "tests" / "test_images" / "32bit.png"))
    assert decoded.shape[2] == 3 and decoded.dtype == np.uint8


# Inputs the fuzzer (make fuzz) found to crash the decoder, kept as regression tests.
FUZZ_FINDINGS = {
    # TIFF whose StripOffsets are DOUBLEs: Pillow raised TypeError while loading.
    "tiff-float-strip-offsets": (
        "SUkqAAgAAAAKAAABBAABAAAAIAAAAAEBBAABAAAAGAAAAAIBAwADAAAAhgAAAAMBAwABAAAAAQAAAAYB"
        "AwABAAAAAgAAABEBDAABAAAAjAAAABUBAwABAAAAAwAAABYBBAABgAAA3wUA3wUAAAAAAAAAAAkAABwB"
        "CgABAAAAAQAAAAAAAAAIAAgACAD4wr7Pkxr1ycykMsuA7aw="
    ),
}


@pytest.mark.parametrize("name", sorted(FUZZ_FINDINGS))
def test_fuzzer_findings_are_refused_cleanly(name: str) -> None:
    import base64

    data = base64.b64decode(FUZZ_FINDINGS[name])
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data, ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000, min_side=8))
    assert "object" not in caught.value.message  # no Python internals in the message
