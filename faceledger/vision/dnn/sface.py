"""SFace (OpenCV Zoo's 2021dec face recognizer, Apache-2.0), a 128-d descriptor, on ORT.

The shipped file is int8 block-quantized; its weights are dequantized once into a float32 graph
(see :mod:`faceledger.vision.dnn.quantized`), its PRelu nodes rewritten as max(x, gamma*x)
where every slope is at most 1, else Relu + Min*gamma (ONNX Runtime spends about half of the
network's time in PRelu otherwise), its Dropout dropped
(inference) and its batch left free. The network sees a 112x112 RGB face aligned on five points
(eyes, nose tip, mouth corners) to the ArcFace template, as OpenCV's FaceRecognizerSF.alignCrop
makes it, scaled inside the graph as (pixel - 127.5) / 128; tests check aligned crops and
descriptors against OpenCV's on real faces.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper
from PIL import Image

from faceledger.vision.dnn.quantized import fold_weights

SIZE = 112
# Where the five points go in a 112x112 crop: the eye on the image's left, the other eye, the
# nose tip, the mouth corner on the image's left, the other (OpenCV's alignCrop uses these).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def build_sface_graph(quantized: onnx.ModelProto) -> onnx.ModelProto:
    graph = quantized.graph
    kept, initializers = fold_weights(graph)
    nodes: list[onnx.NodeProto] = []
    zero = "sface_zero"
    slopes = {i.name: numpy_helper.to_array(i) for i in initializers}
    for node in kept:
        if node.op_type == "PRelu":
            x, gamma = node.input
            out = node.output[0]
            if gamma in slopes and float(slopes[gamma].max()) <= 1.0:
                # With every slope at most 1, PRelu(x) = max(x, slope * x) exactly: two passes
                # over the tensor instead of four (about 1 ms of 16 per face on one thread).
                nodes += [
                    helper.make_node("Mul", [x, gamma], [f"{out}_scaled"]),
                    helper.make_node("Max", [x, f"{out}_scaled"], [out]),
                ]
                continue
            nodes += [
                helper.make_node("Relu", [x], [f"{out}_pos"]),
                helper.make_node("Min", [x, zero], [f"{out}_neg"]),
                helper.make_node("Mul", [f"{out}_neg", gamma], [f"{out}_scaled"]),
                helper.make_node("Add", [f"{out}_pos", f"{out}_scaled"], [out]),
            ]
        elif node.op_type == "Dropout":
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]]))
        else:
            nodes.append(node)
    used = {name for node in nodes for name in node.input}
    nodes = [n for n in nodes if n.op_type != "Constant" or n.output[0] in used]
    initializers = [i for i in initializers if i.name in used]
    initializers.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
    faces = helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, ["faces", 3, SIZE, SIZE])
    output = helper.make_tensor_value_info("fc1", onnx.TensorProto.FLOAT, ["faces", 128])
    model = helper.make_model(
        helper.make_graph(nodes, "sface_float", [faces], [output], initializers),
        opset_imports=list(quantized.opset_import),
    )
    model.ir_version = max(quantized.ir_version, 7)
    onnx.checker.check_model(model)
    return model


def alignment(points: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking the five points
    ((5, 2), in the template's order) closest to :data:`TEMPLATE`, by least squares (Umeyama's
    method, as OpenCV's alignCrop)."""
    source = np.asarray(points, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), TEMPLATE.mean(axis=0)
    a, b = source - source_mean, TEMPLATE - target_mean
    covariance = b.T @ a / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / a.var(axis=0).sum()
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def network_input(crops: np.ndarray) -> np.ndarray:
    """(N, 112, 112, 3) uint8 RGB -> (N, 3, 112, 112) float32 (the graph scales the values)."""
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)


def aligned_crop(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The 112x112 crop the network expects: ``rgb`` warped by :func:`alignment`, bilinear,
    black outside the image (pixel centres at whole numbers, as OpenCV's warpAffine)."""
    forward = np.vstack([alignment(points), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    linear, shift = inverse[:, :2], inverse[:, 2]
    # Pillow samples output pixel (x, y) at A(x + 0.5, y + 0.5) with pixel centres at halves.
    offset = shift + 0.5 - linear @ np.array([0.5, 0.5])
    # Only the part of the image the crop samples (and two pixels more, for the bilinear
    # neighbours) goes to Pillow: a whole video frame would be copied for each face.
    corners = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]], dtype=np.float64)
    reached = corners @ linear.T + offset
    height, width = rgb.shape[:2]
    left, top = (max(0, math.floor(v) - 2) for v in reached.min(axis=0))
    right = min(width, math.ceil(reached[:, 0].max()) + 2)
    bottom = min(height, math.ceil(reached[:, 1].max()) + 2)
    if right <= left or bottom <= top:
        return np.zeros((SIZE, SIZE, 3), np.uint8)  # the crop lies wholly outside the image
    data = (*linear[0], offset[0] - left, *linear[1], offset[1] - top)
    image = Image.fromarray(np.ascontiguousarray(rgb[top:bottom, left:right])).transform(
        (SIZE, SIZE), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(image)
