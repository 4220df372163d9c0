"""Turn a :class:`~.reader.DlibNetwork` into an ONNX graph that computes what dlib computes.

- An affine layer after a convolution is folded into the convolution's weights (the same
  arithmetic, one pass over memory instead of two); elsewhere it is a Mul and an Add.
- dlib's add_prev adds tensors of different sizes by treating missing elements as zero (its
  residual_down blocks produce 3x3 next to a 4x4 pool); the smaller operand is padded at the end.
- Pooling and convolution both use dlib's output size ``1 + (n + 2 pad - window) // stride``,
  which is ONNX's floor mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceledger.vision.dnn.reader import DlibNetwork, Layer

OPSET = 17


@dataclass
class _Value:
    name: str
    shape: tuple[int, int, int] | None  # channels, rows, columns; None when not fixed


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def constant(self, stem: str, array: np.ndarray) -> str:
        name = self.fresh(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        output = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output


def build_descriptor_graph(network: DlibNetwork) -> onnx.ModelProto:
    """uint8 chips (N, rows, columns, 3) -> float32 descriptors (N, 128)."""
    rows, columns = network.input["rows"], network.input["columns"]
    b = _Builder()
    pixels = helper.make_tensor_value_info("chips", TensorProto.UINT8, ["n", rows, columns, 3])
    x = b.node("Cast", ["chips"], to=TensorProto.FLOAT)
    x = b.node("Transpose", [x], perm=[0, 3, 1, 2])
    mean = np.asarray(network.input["mean"], np.float32).reshape(1, 3, 1, 1)
    x = b.node("Sub", [x, b.constant("mean", mean)])
    # dlib divides by 256 (not the standard deviation); a power of two, so exact.
    x = b.node("Mul", [x, b.constant("scale", np.float32(1 / 256))])
    out = _layers(b, network.layers, _Value(x, (3, rows, columns)))
    result = helper.make_tensor_value_info(out.name, TensorProto.FLOAT, ["n", None])
    return _model(b, [pixels], [result], "dlib face descriptor")


def build_mmod_graph(network: DlibNetwork) -> onnx.ModelProto:
    """A normalised, tiled image pyramid (N, 3, H, W) float32 -> detector scores (N, 1, h, w)."""
    b = _Builder()
    tiles = helper.make_tensor_value_info("pyramid", TensorProto.FLOAT, ["n", 3, "h", "w"])
    out = _layers(b, network.layers, _Value("pyramid", None))
    result = helper.make_tensor_value_info(out.name, TensorProto.FLOAT, ["n", None, None, None])
    return _model(b, [tiles], [result], "dlib MMOD face detector")


def _model(
    b: _Builder,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    name: str,
) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "faceledger"
    onnx.checker.check_model(model)
    return model


def _layers(b: _Builder, layers: list[Layer], x: _Value) -> _Value:
    tags: dict[int, _Value] = {}
    index = 0
    while index < len(layers):
        layer = layers[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if layer.kind == "tag":
            tags[layer.attrs["id"]] = x
        elif layer.kind == "skip":
            x = tags[layer.attrs["id"]]
        elif layer.kind == "con":
            fold = following is not None and following.kind == "affine"
            x = _conv(b, layer, following if fold else None, x)
            index += fold
        elif layer.kind == "affine":
            gamma, beta = layer.weights["gamma"], layer.weights["beta"]
            x = _Value(b.node("Mul", [x.name, b.constant("gamma", gamma)]), x.shape)
            x = _Value(b.node("Add", [x.name, b.constant("beta", beta)]), x.shape)
        elif layer.kind == "relu":
            if not layer.attrs["disabled"]:
                x = _Value(b.node("Relu", [x.name]), x.shape)
        elif layer.kind in ("max_pool", "avg_pool"):
            x = _pool(b, layer, x)
        elif layer.kind == "add_prev":
            x = _add(b, x, tags[layer.attrs["tag"]])
        elif layer.kind == "fc":
            flat = b.node("Flatten", [x.name], axis=1)
            product = b.node("MatMul", [flat, b.constant("fc_weight", layer.weights["weight"])])
            bias = layer.weights["bias"]
            name = b.node("Add", [product, b.constant("fc_bias", bias)]) if bias.any() else product
            x = _Value(name, None)
        else:
            raise ValueError(f"no ONNX translation for layer kind {layer.kind!r}")
        index += 1
    return x


def _conv(b: _Builder, layer: Layer, affine: Layer | None, x: _Value) -> _Value:
    weight, bias = layer.weights["weight"], layer.weights["bias"]
    if affine is not None:
        gamma = affine.weights["gamma"].reshape(-1)
        beta = affine.weights["beta"].reshape(-1)
        weight = weight * gamma[:, None, None, None]
        bias = bias * gamma + beta
    (kr, kc), (sy, sx), (py, px) = _geometry(layer, "kernel")
    name = b.node(
        "Conv",
        [x.name, b.constant("weight", weight.astype(np.float32)), b.constant("bias", bias)],
        kernel_shape=[kr, kc],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )
    shape = None
    if x.shape is not None:
        shape = (weight.shape[0], _out(x.shape[1], kr, sy, py), _out(x.shape[2], kc, sx, px))
    return _Value(name, shape)


def _pool(b: _Builder, layer: Layer, x: _Value) -> _Value:
    (wr, wc), (sy, sx), (py, px) = _geometry(layer, "window")
    if (wr, wc) == (0, 0):  # dlib's avg_pool_everything
        shape = None if x.shape is None else (x.shape[0], 1, 1)
        return _Value(b.node("GlobalAveragePool", [x.name]), shape)
    if layer.kind == "avg_pool" and (py or px):
        raise ValueError("padded average pooling is not supported")
    op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
    name = b.node(op, [x.name], kernel_shape=[wr, wc], strides=[sy, sx], pads=[py, px, py, px])
    shape = None
    if x.shape is not None:
        shape = (x.shape[0], _out(x.shape[1], wr, sy, py), _out(x.shape[2], wc, sx, px))
    return _Value(name, shape)


def _add(b: _Builder, first: _Value, second: _Value) -> _Value:
    if first.shape is None or second.shape is None:
        raise ValueError("add_prev needs fixed input sizes")
    target = tuple(max(p, q) for p, q in zip(first.shape, second.shape, strict=True))
    padded = [_pad_to(b, value, target) for value in (first, second)]
    return _Value(b.node("Add", padded), target)


def _pad_to(b: _Builder, value: _Value, target: tuple[int, ...]) -> str:
    assert value.shape is not None
    missing = [t - s for t, s in zip(target, value.shape, strict=True)]
    if not any(missing):
        return value.name
    pads = np.asarray([0, 0, 0, 0, 0, *missing], dtype=np.int64)  # begins for N,C,H,W; ends
    return b.node("Pad", [value.name, b.constant("pads", pads)])


def _geometry(layer: Layer, window: str) -> tuple[tuple[int, int], ...]:
    return layer.attrs[window], layer.attrs["stride"], layer.attrs["padding"]


def _out(size: int, window: int, stride: int, padding: int) -> int:
    return 1 + (size + 2 * padding - window) // stride
