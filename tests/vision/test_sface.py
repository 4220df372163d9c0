"""SFace on ONNX Runtime: the float graph against ONNX's reference evaluator on the shipped int8
file, the alignment against OpenCV's, and the engine's descriptors on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from faceledger.config import get_settings
from faceledger.vision import FaceEngine
from faceledger.vision.dnn import sface
from faceledger.vision.dnn.runtime import OnnxSface, OnnxYunetDetector
from faceledger.vision.models import model_path
from tests.conftest import LFW, require


def lfw_faces(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, YuNet's five points) for ``count`` LFW people."""
    from faceledger.imaging import load_image

    detector = OnnxYunetDetector(get_settings().cache_dir, 1)
    people = sorted(require(LFW / "images").iterdir())[: count * 40 : 40]
    found = []
    for person in people:
        rgb = load_image(sorted(person.iterdir())[0])
        faces = detector(rgb, 0.9)
        if faces:
            face = max(faces, key=lambda f: f.box[2] * f.box[3])
            found.append((rgb, np.array(face.landmarks)))
    return found


@pytest.fixture(scope="module")
def faces():
    return lfw_faces(10)


def test_the_float_graph_computes_the_shipped_int8_network(faces) -> None:
    from onnx.reference import ReferenceEvaluator

    reference = ReferenceEvaluator(onnx.load(str(model_path("sface"))))
    ours = OnnxSface(get_settings().cache_dir, 1)
    crops = np.stack([sface.aligned_crop(rgb, points) for rgb, points in faces[:3]])
    expected = reference.run(
        None,
        {
            "data": sface.network_input(crops),
            "scalar_op1": np.array([127.5], np.float32),
            "scalar_op2": np.array([1 / 128], np.float32),
        },
    )[0]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ours(crops), expected, atol=1e-5)


def test_alignment_matches_opencvs(faces) -> None:
    cv2 = pytest.importorskip("cv2")
    recognizer = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    describe = OnnxSface(get_settings().cache_dir, 1)
    for rgb, points in faces:
        row = np.array([0, 0, 1, 1, *points.ravel(), 1], np.float32)
        theirs = cv2.cvtColor(
            recognizer.alignCrop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), row), cv2.COLOR_BGR2RGB
        )
        ours = sface.aligned_crop(rgb, points)
        assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.0  # rounding only
        a, b = describe(np.stack([ours, theirs]))
        assert float(a @ b) > 0.999


def test_the_engine_describes_with_sface(tmp_path: Path) -> None:
    images = require(LFW / "images")
    engine = FaceEngine.for_model("sface")
    same = [images / "George_W_Bush" / f"George_W_Bush_000{n}.jpg" for n in (1, 2)]
    other = images / "Colin_Powell" / "Colin_Powell_0001.jpg"
    a, b, c = (engine.analyze(p)[0] for p in (*same, other))
    assert len(a.keypoints) == 5 and a.embedding.shape == (128,)
    assert abs(float(np.linalg.norm(a.embedding)) - 1) < 1e-5
    assert np.linalg.norm(a.embedding - b.embedding) < np.linalg.norm(a.embedding - c.embedding)
    # SFace's own scale and table: the same person clears the default threshold, the other
    # does not, and the false match rate reported is SFace's own measurement.
    same_match, other_match = engine.compare(a, b), engine.compare(a, c)
    assert same_match.similarity > 80 > other_match.similarity
    assert engine.calibration.description["pipeline"]["recognizer"] == "sface"
    assert engine.model_version == "sface-2021dec/1.0"
    # A face another detector found is aligned on YuNet's points looked for around it.
    hog = FaceEngine.for_model("sface", detector="hog")
    found = hog.analyze(same[0])[0]
    assert found.detector == "hog" and len(found.keypoints) == 5
    # The same photo's face, whichever detector found it, is all but the same descriptor.
    assert engine.compare(found, a).similarity > 99.99
