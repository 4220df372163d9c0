"""SFace in int8: the float graph of :mod:`faceledger.vision.dnn.sface` with its batch norms
folded into the layers before them, then quantized by ONNX Runtime's static quantizer (QDQ,
int8 weights per output channel, uint8 activations) with activation ranges shipped in the
package (``data/sface-int8-ranges.json``).

The ranges were measured once on aligned crops of UTKFace photos, not LFW, so LFW stays a fair
test of the result (``faceledger models int8-ranges``). Given the same float graph and
ranges the quantizer writes the same graph, so every installation runs the same numbers;
tests check it against the float graph on real faces. The cached graph's name, and the
engine's fingerprint, carry the pinned ranges' digest (:data:`RANGES_SHA256`): a graph is only
ever built from ranges that match it.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from faceledger.errors import ModelFileError

RANGES_FILE = "sface-int8-ranges.json"
RANGES_SHA256 = "8284a30914393523be2b33924dab04cd0eb53c51faf2f46ca854e4a447830ad0"
# Activation ranges cut at the 99.999th percentile: min-max ranges, stretched by a few extreme
# values, cost 0.14 points of LFW (README, "SFace in int8").
PERCENTILE = 99.999


def ranges_path() -> Path:
    return Path(str(resources.files("faceledger.vision").joinpath(f"data/{RANGES_FILE}")))


def fold_batch_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with every BatchNormalization that alone reads a Conv's or Gemm's
    output folded into that layer's weights and bias (inference: the running statistics)."""
    graph = model.graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers = Counter(name for node in graph.node for name in node.input)
    folded: dict[str, onnx.NodeProto] = {}  # BatchNormalization's output -> the new layer
    dropped: set[int] = set()  # ids of the layers and norms the folded layers replace
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            continue
        layer = producer.get(node.input[0])
        if layer is None or layer.op_type not in ("Conv", "Gemm") or readers[node.input[0]] != 1:
            continue
        gamma, beta, mean, variance = (weights[name] for name in node.input[1:5])
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(variance + epsilon)
        weight = weights[layer.input[1]]
        bias = weights[layer.input[2]] if len(layer.input) > 2 else np.zeros_like(mean)
        attributes = {a.name: helper.get_attribute_value(a) for a in layer.attribute}
        if layer.op_type == "Gemm" and not attributes.get("transB", 0):
            weight = weight * scale[None, :]
        else:  # Conv (out, in, kh, kw) and Gemm with transB (out, in): outputs on axis 0
            weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
        bias = (bias - mean) * scale + beta
        weights[f"{node.output[0]}_weight"] = weight.astype(np.float32)
        weights[f"{node.output[0]}_bias"] = bias.astype(np.float32)
        new = helper.make_node(
            layer.op_type,
            [layer.input[0], f"{node.output[0]}_weight", f"{node.output[0]}_bias"],
            list(node.output),
            name=layer.name or node.output[0],
        )
        new.attribute.extend(layer.attribute)
        folded[node.output[0]] = new
        dropped |= {id(layer), id(node)}
    nodes = []
    for node in graph.node:
        if node.op_type == "BatchNormalization" and node.output[0] in folded:
            nodes.append(folded[node.output[0]])
        elif id(node) not in dropped:
            nodes.append(node)
    used = {name for node in nodes for name in node.input}
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items() if k in used]
    result = helper.make_model(
        helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output), initializers),
        opset_imports=list(model.opset_import),
    )
    result.ir_version = model.ir_version
    onnx.checker.check_model(result)
    return result


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer writes its advice (pre-process first; a 1-d weight has no axis 1) to the
    root logger as warnings, at every first use on every machine: not for a server's log."""

    def not_quantizer(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(not_quantizer)
    try:
        yield
    finally:
        root.removeFilter(not_quantizer)


def _quantize(
    model: onnx.ModelProto, ranges: Path, reader: object | None = None
) -> onnx.ModelProto:
    # Imported here: the quantizer pulls in modules the rest of the engine never needs.
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="faceledger-int8-") as scratch, _quiet_quantizer():
        source, target = Path(scratch) / "float.onnx", Path(scratch) / "int8.onnx"
        onnx.save(fold_batch_norms(model), str(source))
        quantize_static(
            str(source),
            str(target),
            reader,  # type: ignore[arg-type]
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            calibration_cache_path=str(ranges),
            extra_options={"CalibPercentile": PERCENTILE},
        )
        return onnx.load(str(target))


def build_sface_int8_graph(
    float_model: onnx.ModelProto, ranges: Path | None = None
) -> onnx.ModelProto:
    """The int8 graph from SFace's float graph and activation ranges: the shipped ones (checked
    against :data:`RANGES_SHA256`, as the registry checks weights) unless ``ranges`` is given."""
    shipped = ranges is None
    ranges = ranges or ranges_path()
    if not ranges.is_file():
        raise ModelFileError(f"SFace's int8 activation ranges are missing: {ranges}")
    if shipped:
        digest = hashlib.sha256(ranges.read_bytes()).hexdigest()
        if digest != RANGES_SHA256:
            raise ModelFileError(
                f"SFace's int8 activation ranges {ranges} have SHA-256 {digest}, expected "
                f"{RANGES_SHA256}: changed since release (if measured again on purpose, the "
                "model needs a new version, calibration and audit, and this pin updated)"
            )
    return _quantize(float_model, ranges)


def measure_ranges(float_model: onnx.ModelProto, crops: np.ndarray, out: Path) -> None:
    """Write the activation ranges of SFace's layers over ``crops`` ((N, 3, 112, 112) float32,
    as :func:`faceledger.vision.dnn.sface.network_input` makes them) to ``out``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self._each: Iterator[np.ndarray] = iter(crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            crop = next(self._each, None)
            return None if crop is None else {"data": crop[None]}

    out.unlink(missing_ok=True)
    _quantize(float_model, out, Crops())
