"""Writes seed inputs for fuzz_inputs.py: small real images of each format, JSON bodies of each
Rekognition action, base64 text, a SigV4 header (first byte: which reader)."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.api.rekognition.validation import SPECS


def sample_images() -> list[bytes]:
    """A small noise image in every accepted format (and progressive JPEG)."""
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    images = []
    for kind, options in (
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {}),
    ):
        buffer = io.BytesIO()
        picture.save(buffer, kind, **options)
        images.append(buffer.getvalue())
    return images


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [b"\x00" + image for image in sample_images()]
    seeds.append(b"\x01" + json.dumps({"CollectionId": "c", "MaxFaces": 3}).encode())
    seeds.append(b"\x02" + b"data:image/png;base64," + base64.b64encode(b"hello"))
    seeds.append(
        b"\x03AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/rekognition/aws4_request, "
        b"SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64 + b"\n20261124T000000Z"
    )
    for number, action in enumerate(sorted(SPECS)):
        body = {name: "x" for name in SPECS[action][1]}
        seeds.append(b"\x04" + bytes([number]) + json.dumps(body).encode())
    for number, seed in enumerate(seeds):
        (folder / f"seed-{number:03d}").write_bytes(seed)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzzing/corpus"))
