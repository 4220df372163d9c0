"""What dlib's MMOD detector does around its network: the tiled image pyramid going in and the
detection decoding and non-maximum suppression coming out, so our boxes are dlib's boxes.

dlib runs the network once over one large image holding the whole pyramid (each level 5/6 of the
previous, packed in two columns with zero padding between them); every output cell above 0 is a
window, mapped back through the convolutions to the pyramid, from its tile to the original image,
and kept unless it overlaps a higher-scoring one. The arithmetic follows dlib's
input_image_pyramid, compute_tiled_image_pyramid_details, tiled_pyramid_to_image, loss_mmod_ and
test_box_overlap; resampling is dlib's own ``resize_image`` so pixels match exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dlib
import numpy as np

from faceledger.vision.dnn.reader import DlibNetwork

Rect = tuple[int, int, int, int]  # left, top, right, bottom; inclusive, as dlib's rectangle
PYRAMID_RATE = 5 / 6  # pyramid_down<6>
UP_RATIO = 6 / 5.0  # its point_up: p * N / (N - 1) + 0.3
MIN_LEVEL_HEIGHT = 5


@dataclass(frozen=True)
class Detection:
    rect: Rect
    score: float


@dataclass(frozen=True)
class PyramidLayout:
    rects: list[Rect]  # where each level sits in the tiled image, level 0 first
    rows: int
    columns: int


def pyramid_layout(rows: int, columns: int, padding: int, outer: int) -> PyramidLayout:
    """Where each level of the pyramid goes: down the left column, then back up the right."""
    sizes = [(columns, rows)]
    while True:
        rows, columns = math.floor(PYRAMID_RATE * rows), math.floor(PYRAMID_RATE * columns)
        if rows * columns == 0 or rows < MIN_LEVEL_HEIGHT:
            break
        sizes.append((columns, rows))
    width0, height0 = sizes[0]
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    height, previous_width = 0, 0
    for width, h in sizes:
        fits_beside = width <= width0 - previous_width - padding
        if fits_beside and (height - height0) * 2 >= total_height - height0:
            break
        height += h + padding
        previous_width = width
    height -= padding

    rects: list[Rect] = []
    y = outer
    while y < height + outer and len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        rects.append((outer, y, outer + w - 1, y + h - 1))
        y += h + padding
    y -= padding
    right = outer + width0 - 1
    while len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        rect = (right - w + 1, y - h, right, y - 1)
        if _intersection_area(rect, rects[0]):
            break  # the last levels would overlap the original image; dlib drops them
        rects.append(rect)
        y -= h + padding
    return PyramidLayout(rects, height + 2 * outer, width0 + 2 * outer)


def tiled_pyramid(rgb: np.ndarray, mean: tuple[float, float, float], layout: PyramidLayout):
    """The network's input for one image: (3, rows, columns) float32."""
    out = np.zeros((3, layout.rows, layout.columns), np.float32)
    left, top, right, bottom = layout.rects[0]
    for channel in range(3):
        plane = (rgb[:, :, channel].astype(np.float32) - np.float32(mean[channel])) / 256
        out[channel, top : bottom + 1, left : right + 1] = plane
        for (pl, pt, pr, pb), (x0, y0, x1, y1) in zip(layout.rects, layout.rects[1:], strict=False):
            source = np.ascontiguousarray(out[channel, pt : pb + 1, pl : pr + 1])
            out[channel, y0 : y1 + 1, x0 : x1 + 1] = dlib.resize_image(
                source, y1 - y0 + 1, x1 - x0 + 1
            )
    return out


def upsample(rgb: np.ndarray, times: int) -> np.ndarray:
    """dlib's pyramid_up with pyramid_down<2>, ``times`` times (as its Python CNN detector)."""
    for _ in range(times):
        rows, columns = rgb.shape[:2]
        # rect_up of the whole image, rounded as dlib rounds a drectangle: (2.5, 1.5) to
        # (2 columns + 0.5, 2 rows - 0.5); the image spans to its bottom-right corner.
        right = _lround((columns - 1 + 1.25) * 2)
        bottom = _lround((rows - 1 + 0.75) * 2)
        rgb = dlib.resize_image(np.ascontiguousarray(rgb), bottom + 1, right + 1)
    return rgb


def decode(
    scores: np.ndarray,
    network: DlibNetwork,
    layout: PyramidLayout,
    upsampled: int = 0,
    threshold: float = 0.0,
) -> list[Detection]:
    """Detections from one image's score map (rows, columns), best first, after NMS."""
    window_width, window_height, _ = network.loss["detector_windows"][0]
    scale, offset = _output_to_input(network)
    rows, columns = np.nonzero(scores > threshold)
    found: list[tuple[float, tuple[float, float, float, float]]] = []
    for r, c in zip(rows.tolist(), columns.tolist(), strict=True):
        x, y = c * scale + offset, r * scale + offset
        half_w, half_h = (window_width - 1) / 2, (window_height - 1) / 2
        rect = (x - half_w, y - half_h, x + half_w, y + half_h)
        found.append((float(scores[r, c]), _tile_to_image(layout.rects, (x, y), rect)))
    found.sort(key=lambda item: item[0], reverse=True)

    kept: list[Detection] = []
    nms_iou, nms_covered = network.loss["nms_iou"], network.loss["nms_covered"]
    for score, box in found:
        rect = tuple(_lround(v) for v in box)
        if any(_overlaps(k.rect, rect, nms_iou, nms_covered) for k in kept):
            continue
        kept.append(Detection(rect, score))  # type: ignore[arg-type]
    return [Detection(_rect_down(d.rect, upsampled), d.score) for d in kept]


def _output_to_input(network: DlibNetwork) -> tuple[int, int]:
    # Each convolution maps an output cell p to input p * stride - padding + kernel // 2
    # (dlib's map_output_to_input); composing them gives scale * p + offset.
    scale, offset = 1, 0
    for layer in reversed(network.layers):
        if layer.kind == "con":
            (kernel, _), (stride, _), (padding, _) = (
                layer.attrs["kernel"],
                layer.attrs["stride"],
                layer.attrs["padding"],
            )
            scale, offset = scale * stride, offset * stride - padding + kernel // 2
    return scale, offset


def _tile_to_image(
    rects: list[Rect], centre: tuple[float, float], box: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    point = (math.floor(centre[0] + 0.5), math.floor(centre[1] + 0.5))
    level = _nearest_rect(rects, point)
    left, top = rects[level][:2]
    corners = [(box[0] - left, box[1] - top), (box[2] - left, box[3] - top)]
    for _ in range(level):
        corners = [(x * UP_RATIO + 0.3, y * UP_RATIO + 0.3) for x, y in corners]
    return (corners[0][0], corners[0][1], corners[1][0], corners[1][1])


def _nearest_rect(rects: list[Rect], point: tuple[int, int]) -> int:
    best, best_distance = 0, math.inf
    x, y = point
    for index, (x0, y0, x1, y1) in enumerate(rects):
        if x0 <= x <= x1 and y0 <= y <= y1:
            return index
        distance = math.hypot(min(max(x, x0), x1) - x, min(max(y, y0), y1) - y)
        if distance < best_distance:
            best, best_distance = index, distance
    return best


def _rect_down(rect: Rect, levels: int) -> Rect:
    if not levels:
        return rect
    corners = [(float(rect[0]), float(rect[1])), (float(rect[2]), float(rect[3]))]
    for _ in range(levels):
        corners = [(x / 2 - 1.25, y / 2 - 0.75) for x, y in corners]
    (x0, y0), (x1, y1) = corners
    return (_lround(x0), _lround(y0), _lround(x1), _lround(y1))


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    # dlib's test_box_overlap: "outer" is the area of the bounding box of both, not the union.
    inner = _intersection_area(a, b)
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def _intersection_area(a: Rect, b: Rect) -> int:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _area(rect: Rect) -> int:
    width, height = rect[2] - rect[0] + 1, rect[3] - rect[1] + 1
    return width * height if width > 0 and height > 0 else 0


def _lround(value: float) -> int:
    # C's lround: halves go away from zero (Python's round goes to even).
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
