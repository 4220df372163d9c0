"""Int8 block-quantized ONNX graphs (OpenCV Zoo's builds of YuNet and SFace) made plain float32
ones: ONNX Runtime refuses some of their per-tensor blocks and runs the rest about twice as slow
as the same weights dequantized once at load, so every DequantizeLinear over constant weights
(and the Reshape after it) is folded into an ordinary initializer. The weights are unchanged."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def fold_weights(graph: onnx.GraphProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The graph's nodes without its weight dequantization, and the initializers they use
    (dequantized weights as float32, the rest as they were)."""
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        sources = [folded.get(name, constants.get(name)) for name in node.input]
        if node.op_type == "DequantizeLinear" and all(s is not None for s in sources):
            folded[node.output[0]] = dequantize(node, *sources)
        elif node.op_type == "Reshape" and node.input[0] in folded:
            shape = constants[node.input[1]]
            folded[node.output[0]] = folded.pop(node.input[0]).reshape(shape)
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input}
    initializers = [numpy_helper.from_array(v, k) for k, v in folded.items() if k in used]
    initializers += [init for init in graph.initializer if init.name in used]
    return kept, initializers


def dequantize(node: onnx.NodeProto, values: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """ONNX DequantizeLinear (opset 21) over constants, including block quantization: the scale
    (and zero point) has one entry per ``block_size`` values along ``axis``."""
    scale = rest[0].astype(np.float32)
    zero = rest[1].astype(np.float32) if len(rest) > 1 else np.zeros_like(scale)
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis = attributes.get("axis", 1) % max(values.ndim, 1)
    block = attributes.get("block_size", 0)
    if block:
        size = values.shape[axis]
        scale = np.repeat(scale, block, axis=axis).take(range(size), axis=axis)
        zero = np.repeat(zero, block, axis=axis).take(range(size), axis=axis)
    elif scale.ndim == 1 and values.ndim > 1:  # per-axis
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)
