"""The engine's networks on ONNX Runtime: graphs built from the installed weights on first use
(dlib's from its own serialization format, YuNet and SFace dequantized from their int8 files,
SFace's int8 graph quantized from its float one), cached by the source file's SHA-256, and run
with a fixed number of threads.

Two processes building the same graph at once each write a private temporary file and rename it
into place; the rename is atomic and both files are identical, so readers never see half a graph.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from faceledger.errors import ModelFileError
from faceledger.vision.dnn import architectures, mmod, sface, sface_int8, yunet
from faceledger.vision.dnn.graph import build_descriptor_graph, build_mmod_graph
from faceledger.vision.dnn.reader import DlibNetwork, read_network
from faceledger.vision.models import get_spec, model_path

# Bump when the graph builder's output changes, so cached graphs are rebuilt.
BUILDER_VERSION = 2
DESCRIPTOR_BATCH = 64  # chips per run: larger batches gain nothing and cost memory

_NETWORKS: dict[str, tuple[Callable[[], list], Callable[[DlibNetwork], onnx.ModelProto]]] = {
    "resnet128": (architectures.face_descriptor, build_descriptor_graph),
    "cnn": (architectures.mmod_face_detector, build_mmod_graph),
}
BUILDABLE = (*_NETWORKS, "yunet", "sface", "sface-int8")


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def load_network(name: str) -> DlibNetwork:
    architecture, _ = _NETWORKS[name]
    return read_network(model_path(name), architecture())


def graph_path(name: str, cache_dir: Path) -> Path:
    spec = get_spec(name)
    key = f"{spec.sha256[:16]}-v{BUILDER_VERSION}"
    if name == "sface-int8":  # the activation ranges decide the graph as much as the weights
        key += f"-r{sface_int8.RANGES_SHA256[:12]}"
    return cache_dir / "onnx" / f"{name}-{key}.onnx"


def build_graph(name: str, cache_dir: Path, *, force: bool = False) -> Path:
    """The cached ONNX graph of a registered network, built if missing (or ``force``)."""
    if name not in BUILDABLE:
        raise ModelFileError(f"no ONNX graph for model {name!r}; buildable: {BUILDABLE}")
    target = graph_path(name, cache_dir)
    if target.is_file() and not force:
        return target
    model = _build(name, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(model.SerializeToString())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def _build(name: str, cache_dir: Path) -> onnx.ModelProto:
    if name == "sface-int8":
        return sface_int8.build_sface_int8_graph(onnx.load(str(build_graph("sface", cache_dir))))
    if name == "yunet":
        return yunet.build_yunet_graph(onnx.load(str(model_path(name))))
    if name == "sface":
        return sface.build_sface_graph(onnx.load(str(model_path(name))))
    _, builder = _NETWORKS[name]
    return builder(load_network(name))


def open_session(name: str, cache_dir: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle ORT threads otherwise spin for a while after each run, taking the cores the dlib
    # detectors (HOG, landmarks) need between runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = build_graph(name, cache_dir)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged cache file: rebuild it once
        path = build_graph(name, cache_dir, force=True)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxDescriptor:
    """dlib's ResNet face descriptor: uint8 chips (N, 150, 150, 3) -> (N, 128) float32."""

    def __init__(self, cache_dir: Path, threads: int) -> None:
        self._session = open_session("resnet128", cache_dir, threads)

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        return describe_in_batches(self._session, "chips", chips)


def describe_in_batches(
    session: ort.InferenceSession,
    name: str,
    faces: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray] = lambda batch: batch,
) -> np.ndarray:
    """(N, 128) float32 descriptors of ``faces``, DESCRIPTOR_BATCH at a time."""
    if len(faces) == 0:
        return np.zeros((0, 128), np.float32)
    parts = [
        session.run(None, {name: prepare(faces[i : i + DESCRIPTOR_BATCH])})[0]
        for i in range(0, len(faces), DESCRIPTOR_BATCH)
    ]
    return np.concatenate(parts).astype(np.float32, copy=False)


class OnnxMmodDetector:
    """dlib's MMOD CNN face detector with dlib's pyramid, decoding and NMS around the network."""

    def __init__(self, cache_dir: Path, threads: int) -> None:
        self._network = load_network("cnn")
        self._session = open_session("cnn", cache_dir, threads)

    def __call__(self, rgb: np.ndarray, upsample: int = 0) -> list[mmod.Detection]:
        image = mmod.upsample(rgb, upsample)
        rows, columns = image.shape[:2]
        padding, outer = self._network.input["padding"], self._network.input["outer_padding"]
        layout = mmod.pyramid_layout(rows, columns, padding, outer)
        pyramid = mmod.tiled_pyramid(image, self._network.input["mean"], layout)
        scores = self._session.run(None, {"pyramid": pyramid[None]})[0]
        return mmod.decode(scores[0, 0], self._network, layout, upsampled=upsample)


class OnnxYunetDetector:
    """YuNet: an RGB uint8 image -> faces scoring at least ``threshold``, in its own pixels."""

    def __init__(self, cache_dir: Path, threads: int) -> None:
        self._session = open_session("yunet", cache_dir, threads)
        self._outputs = [output.name for output in self._session.get_outputs()]

    def __call__(self, rgb: np.ndarray, threshold: float) -> list[yunet.YunetFace]:
        tensor = yunet.network_input(rgb)
        values = self._session.run(None, {"input": tensor})
        rows, cols = tensor.shape[2:]
        return yunet.decode(
            dict(zip(self._outputs, values, strict=True)), rows, cols, threshold=threshold
        )

    def near(
        self, rgb: np.ndarray, regions: list[tuple[int, int, int, int]], threshold: float
    ) -> list[yunet.YunetFace]:
        """Faces found within ``regions`` (left, top, right, bottom) only, in the image's
        pixels: each region is run apart, as a small image of its own."""
        found = [
            yunet.shifted(face, left, top)
            for left, top, right, bottom in regions
            for face in self(rgb[top:bottom, left:right], threshold)
        ]
        return yunet.suppressed(found)


class OnnxSface:
    """SFace: aligned uint8 RGB crops (N, 112, 112, 3) -> (N, 128) unit-length float32.
    ``graph`` is ``sface`` (float32) or ``sface-int8``."""

    def __init__(self, cache_dir: Path, threads: int, graph: str = "sface") -> None:
        self._session = open_session(graph, cache_dir, threads)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        vectors = describe_in_batches(self._session, "data", crops, sface.network_input)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
