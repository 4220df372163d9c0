"""SFace in int8: built from the shipped weights and activation ranges, the same graph on every
build, close to the float model on real faces, and as good at telling LFW's pairs apart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.config import get_settings
from faceledger.errors import ModelFileError
from faceledger.evaluation import lfw
from faceledger.vision import FaceEngine
from faceledger.vision.dnn import sface, sface_int8
from faceledger.vision.dnn.runtime import OnnxSface, build_graph, graph_path
from tests.conftest import DATA, LFW, require
from tests.vision.test_sface import lfw_faces


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return np.stack([sface.aligned_crop(rgb, points) for rgb, points in lfw_faces(40)])


@pytest.fixture(scope="module")
def float_graph() -> onnx.ModelProto:
    return onnx.load(str(build_graph("sface", get_settings().cache_dir)))


def run(model: onnx.ModelProto, crops: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"data": sface.network_input(crops)})[0]


def test_folding_the_batch_norms_leaves_the_network_unchanged(float_graph, crops) -> None:
    folded = sface_int8.fold_batch_norms(float_graph)
    kinds = [node.op_type for node in folded.graph.node]
    # 28 of 29 follow a Conv or the Gemm; one follows an activation and stays.
    assert kinds.count("BatchNormalization") == 1
    np.testing.assert_allclose(run(folded, crops), run(float_graph, crops), atol=2e-5)


def test_int8_descriptors_stay_close_to_the_float_models(crops) -> None:
    cache = get_settings().cache_dir
    exact, quantized = OnnxSface(cache, 1, "sface")(crops), OnnxSface(cache, 1, "sface-int8")(crops)
    agreement = np.sum(exact * quantized, axis=1)
    # Measured over all LFW images: mean 0.988, least 0.937.
    assert agreement.mean() > 0.975 and agreement.min() > 0.9, agreement
    assert not np.array_equal(exact, quantized)  # really the int8 graph
    norms = np.linalg.norm(quantized, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_int8_tells_lfw_pairs_apart_as_well_as_float() -> None:
    pairs = lfw.read_pairs(require(LFW / "protocol" / "pairs.txt"))
    chosen = [p for p in pairs if p.fold == 0][:80] + [p for p in pairs if p.fold == 0][300:380]
    accuracy = {}
    for model in ("sface", "sface-int8"):
        engine = FaceEngine.for_model(model, cnn_fallback=True)
        vectors: dict[str, np.ndarray] = {}
        for name in {n for p in chosen for n in (p.first, p.second)}:
            faces = engine.analyze(LFW / "images" / name)
            vectors[name] = faces[0].embedding if faces else np.zeros(128, np.float32)
        scores = np.array([float(vectors[p.first] @ vectors[p.second]) for p in chosen])
        same = np.array([p.same for p in chosen])
        accuracy[model] = max(np.mean((scores >= t) == same) for t in np.unique(scores))
    # 160 pairs of fold 1: one pair more or less is noise.
    assert accuracy["sface-int8"] >= accuracy["sface"] - 1 / 160, accuracy
    assert accuracy["sface-int8"] >= 0.97, accuracy


def test_the_int8_graph_is_the_same_on_every_build(float_graph) -> None:
    first = sface_int8.build_sface_int8_graph(float_graph)
    again = sface_int8.build_sface_int8_graph(float_graph)
    assert first.SerializeToString() == again.SerializeToString()
    assert sum(node.op_type == "QuantizeLinear" for node in first.graph.node) > 50
    # The cached graph's name carries the ranges it was quantized with (the shipped file is
    # the pinned one: a changed file is refused below).
    name = graph_path("sface-int8", Path("/cache")).name
    shipped = hashlib.sha256(sface_int8.ranges_path().read_bytes()).hexdigest()
    assert shipped == sface_int8.RANGES_SHA256 and shipped[:12] in name


def test_missing_or_changed_ranges_are_a_clear_error(float_graph, tmp_path, monkeypatch) -> None:
    with pytest.raises(ModelFileError, match="int8 activation ranges are missing"):
        sface_int8.build_sface_int8_graph(float_graph, tmp_path / "gone.json")
    # One range widened in a copy of the shipped file: refused, as changed weights are.
    text = sface_int8.ranges_path().read_text()
    tampered = tmp_path / "ranges.json"
    tampered.write_text(text.replace('"lowest": -4.584463119506836', '"lowest": -9.0', 1))
    assert tampered.read_text() != text
    monkeypatch.setattr(sface_int8, "ranges_path", lambda: tampered)
    with pytest.raises(ModelFileError, match="changed since release"):
        sface_int8.build_sface_int8_graph(float_graph)


def test_the_shipped_ranges_are_what_the_command_measures(tmp_path) -> None:
    require(DATA / "utkface" / "images")
    out = tmp_path / "ranges.json"
    result = CliRunner().invoke(
        app, ["models", "int8-ranges", "--data", str(DATA / "utkface"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "over 199 faces" in result.output and "the ranges this release pins" in result.output
    measured, shipped = ranges_of(out), ranges_of(sface_int8.ranges_path())
    assert measured.keys() == shipped.keys() and len(shipped) > 80
    # Equal here to the last bit; another CPU's float kernels may round differently.
    for tensor, (low, high) in shipped.items():
        assert measured[tensor] == pytest.approx((low, high), rel=1e-3, abs=1e-5), tensor


def ranges_of(path: Path) -> dict[str, tuple[float, float]]:
    """Each tensor's (lowest, highest) from ONNX Runtime's calibration cache file."""

    def number(value: object) -> float:
        return float(value["data"] if isinstance(value, dict) else value)  # type: ignore[index]

    data = json.loads(path.read_text())["data"]
    return {name: (number(r["lowest"]), number(r["highest"])) for name, r in data.items()}
