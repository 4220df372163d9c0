"""A JPEG's structure, read from its markers without decoding it.

libjpeg fills a scan that ends early with flat grey and only warns, so a file whose header
claims 6000x6000 pixels but carries the data of a 250x250 image decodes "successfully" to 36
megapixels. Every 8x8 block of every component needs at least one bit of entropy-coded data
(its DC coefficient's Huffman code is 1 to 16 bits, in sequential and progressive JPEG alike),
and in sequential JPEG also an end-of-block code of at least one bit (a block without one codes
all 63 AC coefficients, far more). A file with fewer bits than that cannot hold the image it
claims: it is refused as truncated before it is decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SOI = b"\xff\xd8"
# Start-of-frame markers; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) are not frames.
FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
ARITHMETIC_FRAMES = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
SEQUENTIAL_HUFFMAN_FRAMES = {0xC0, 0xC1}  # at least 2 bits a block; others at least 1
STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI: no length field
SOS, EOI = 0xDA, 0xD9


@dataclass(frozen=True)
class JpegLayout:
    width: int
    height: int
    blocks: int  # 8x8 blocks over all components, at their sampling
    entropy_bytes: int  # bytes of entropy-coded data over all scans
    arithmetic: bool
    bits_per_block: int  # the least entropy-coded data any block can take

    @property
    def minimum_bytes(self) -> int:
        return (self.blocks * self.bits_per_block + 7) // 8

    @property
    def holds_claimed_size(self) -> bool:
        return self.entropy_bytes >= self.minimum_bytes


def read_layout(data: bytes) -> JpegLayout | None:
    """The layout of a JPEG, or None when the markers cannot be followed (the decoder then
    says what is wrong)."""
    if not data.startswith(SOI):
        return None
    position, frame, entropy = 2, None, 0
    end = len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == EOI:
            break
        if marker in STANDALONE:
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2 or position + 2 + length > end:
            return None
        segment = data[position + 4 : position + 2 + length]
        if marker in FRAMES:
            frame = _frame(marker, segment)
            if frame is None:
                return None
        position += 2 + length
        if marker == SOS:
            scanned = _entropy_length(data, position)
            entropy += scanned
            position += scanned
    if frame is None:
        return None
    width, height, blocks, marker = frame
    return JpegLayout(
        width,
        height,
        blocks,
        entropy,
        marker in ARITHMETIC_FRAMES,
        2 if marker in SEQUENTIAL_HUFFMAN_FRAMES else 1,
    )


def _frame(marker: int, segment: bytes) -> tuple[int, int, int, int] | None:
    if len(segment) < 6:
        return None
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    if len(segment) < 6 + 3 * count or count == 0:
        return None
    sampling = [(segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 0x0F) for i in range(count)]
    h_max = max(h for h, _ in sampling) or 1
    v_max = max(v for _, v in sampling) or 1
    blocks = sum(
        math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8)
        for h, v in sampling
    )
    return width, height, blocks, marker


def _entropy_length(data: bytes, start: int) -> int:
    """Bytes from ``start`` to the next marker that ends the scan (0xFF00 is a stuffed 0xFF and
    RSTn markers sit inside the scan)."""
    position = start
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 >= len(data):
            return len(data) - start
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position = found + 1 if following == 0xFF else found + 2
            continue
        return found - start
