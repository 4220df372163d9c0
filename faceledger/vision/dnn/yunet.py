"""YuNet, a small face detector (libfacedetection, MIT; OpenCV Zoo's 2023mar build), on ORT.

The shipped file is int8 block-quantized with a fixed 640x640 input. ONNX Runtime runs the
quantized graph slower than a float one (each run dequantizes every weight), so the weights are
dequantized once into a float32 graph with a free input size, cached beside dlib's graphs.

The network sees a BGR image of raw 0-255 values, padded at the right and bottom to a multiple of
32 (its coarsest stride). For each stride (8, 16, 32) every output cell predicts a class score, an
objectness, a box (centre offset in cells, log size in cells) and five landmarks (offsets in
cells); the score is the geometric mean of class and objectness. This is how OpenCV's
FaceDetectorYN decodes it; tests check our boxes against OpenCV's on real photos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from faceledger.vision.dnn.quantized import fold_weights

STRIDES = (8, 16, 32)
ALIGN = 32  # the input is padded to a multiple of the coarsest stride
# YuNet's five points, in its order (image left/right, the viewer's).
LANDMARKS = ("eye_right", "eye_left", "nose_tip", "mouth_right", "mouth_left")
MOST_REGIONS = 24  # faces looked for again one by one; more, and the whole image is looked at


@dataclass(frozen=True)
class YunetFace:
    """A detection in the pixels of the image given: box ``left, top, width, height``."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]


def build_yunet_graph(quantized: onnx.ModelProto) -> onnx.ModelProto:
    """A float32 copy of the quantized YuNet graph: every DequantizeLinear of constant weights
    (and the Reshape that follows it) folded into a plain initializer; input height and width
    left free."""
    graph = quantized.graph
    kept, initializers = fold_weights(graph)
    image = helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "rows", "cols"])
    outputs = [
        helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT, [1, "cells", _width(o)])
        for o in graph.output
    ]
    float_graph = helper.make_graph(kept, "yunet_float", [image], outputs, initializers)
    model = helper.make_model(float_graph, opset_imports=list(quantized.opset_import))
    model.ir_version = quantized.ir_version
    onnx.checker.check_model(model)
    return model


def _width(output: onnx.ValueInfoProto) -> int:
    return output.type.tensor_type.shape.dim[2].dim_value


def network_input(rgb: np.ndarray) -> np.ndarray:
    """(1, 3, rows, cols) float32 BGR, zero-padded at the right and bottom to a multiple of 32."""
    height, width = rgb.shape[:2]
    rows, cols = -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN
    tensor = np.zeros((1, 3, rows, cols), np.float32)
    tensor[0, :, :height, :width] = rgb[:, :, ::-1].transpose(2, 0, 1)
    return tensor


def decode(
    outputs: dict[str, np.ndarray],
    rows: int,
    cols: int,
    *,
    threshold: float,
    nms_iou: float = 0.3,
) -> list[YunetFace]:
    """Faces scoring at least ``threshold``, after non-maximum suppression, best first."""
    boxes, scores, points = [], [], []
    for stride in STRIDES:
        grid_rows, grid_cols = rows // stride, cols // stride
        cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        keep = np.nonzero(score >= threshold)[0]
        if not len(keep):
            continue
        row, col = np.divmod(keep, grid_cols)
        assert grid_rows * grid_cols == len(cls)
        bbox = outputs[f"bbox_{stride}"][0, keep].astype(np.float64)
        kps = outputs[f"kps_{stride}"][0, keep].astype(np.float64).reshape(-1, 5, 2)
        centre_x, centre_y = (col + bbox[:, 0]) * stride, (row + bbox[:, 1]) * stride
        width, height = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        boxes.append(np.stack([centre_x - width / 2, centre_y - height / 2, width, height], 1))
        scores.append(score[keep])
        points.append((kps + np.stack([col, row], 1)[:, None, :]) * stride)
    if not boxes:
        return []
    all_boxes, all_scores, all_points = (
        np.concatenate(boxes),
        np.concatenate(scores),
        np.concatenate(points),
    )
    faces = []
    for index in _nms(all_boxes, all_scores, nms_iou):
        landmarks = tuple((float(x), float(y)) for x, y in all_points[index])
        box = tuple(float(v) for v in all_boxes[index])
        faces.append(YunetFace(box, float(all_scores[index]), landmarks))  # type: ignore[arg-type]
    return faces


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    left, top = boxes[:, 0], boxes[:, 1]
    right, bottom = left + boxes[:, 2], top + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    kept: list[int] = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        width = np.minimum(right[best], right[rest]) - np.maximum(left[best], left[rest])
        height = np.minimum(bottom[best], bottom[rest]) - np.maximum(top[best], top[rest])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        overlap = inter / (area[best] + area[rest] - inter)
        order = [int(i) for i in rest[overlap <= iou]]
    return kept


def regions_around(
    boxes: Sequence[tuple[float, float, float, float]],
    height: int,
    width: int,
    *,
    margin: float = 2.5,
    min_side: int = 64,
) -> list[tuple[int, int, int, int]]:
    """Where to look again for faces seen at ``boxes`` (left, top, width, height) a frame ago:
    each box grown about its centre to ``margin`` times its longer side (at least ``min_side``),
    cut to the image, and regions that overlap merged until none do, so each face is looked for
    in one region. Regions are (left, top, right, bottom) in pixels."""
    if len(boxes) > MOST_REGIONS:
        return [(0, 0, width, height)]  # a crowd: the whole frame costs less than its parts
    regions = []
    for left, top, box_width, box_height in boxes:
        side = max(min_side, margin * max(box_width, box_height))
        cx, cy = left + box_width / 2, top + box_height / 2
        regions.append(
            (
                max(0, math.floor(cx - side / 2)),
                max(0, math.floor(cy - side / 2)),
                min(width, math.ceil(cx + side / 2)),
                min(height, math.ceil(cy + side / 2)),
            )
        )
    regions = [r for r in regions if r[2] > r[0] and r[3] > r[1]]
    while True:
        pairs = ((i, j) for i in range(len(regions)) for j in range(i + 1, len(regions)))
        overlapping = next((p for p in pairs if _overlap(regions[p[0]], regions[p[1]])), None)
        if overlapping is None:
            return regions
        i, j = overlapping
        other = regions.pop(j)
        regions[i] = (
            min(regions[i][0], other[0]),
            min(regions[i][1], other[1]),
            max(regions[i][2], other[2]),
            max(regions[i][3], other[3]),
        )


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def shifted(face: YunetFace, dx: float, dy: float) -> YunetFace:
    """The face as found in a region whose top left corner is at (dx, dy) of the image."""
    left, top, box_width, box_height = face.box
    points = tuple((x + dx, y + dy) for x, y in face.landmarks)
    return YunetFace((left + dx, top + dy, box_width, box_height), face.score, points)


def suppressed(faces: list[YunetFace], nms_iou: float = 0.3) -> list[YunetFace]:
    """Faces found in several regions, without the same face twice, best first."""
    if len(faces) < 2:
        return faces
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    scores = np.array([f.score for f in faces], dtype=np.float64)
    return [faces[i] for i in _nms(boxes, scores, nms_iou)]
