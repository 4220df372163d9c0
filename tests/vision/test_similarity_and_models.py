from __future__ import annotations

import json

import numpy as np
import pytest

from faceledger.errors import ModelFileError
from faceledger.vision import Calibration, distance_to_similarity
from faceledger.vision.models import REGISTRY, _verify, get_spec, model_path
from faceledger.vision.similarity import GRID_SIZE, similarity_bins, similarity_to_distance


def test_similarity_map_is_monotone_and_anchored() -> None:
    distances = np.linspace(0, 1.5, 301)
    similarities = distance_to_similarity(distances)
    assert np.all(np.diff(similarities) < 0)
    assert distance_to_similarity(0.6) == pytest.approx(50)
    assert similarities.min() >= 0 and similarities.max() <= 100
    for s in (1, 50, 80, 95, 99, 99.9):
        assert distance_to_similarity(similarity_to_distance(s)) == pytest.approx(s)


def synthetic_calibration() -> Calibration:
    # 1000 impostors spread evenly over similarity 0-49.95, 100 genuines at 90-99.9.
    impostor = similarity_bins(np.arange(1000) * 0.05)
    genuine = similarity_bins(90 + np.arange(100) * 0.1)
    return Calibration(impostor, genuine, {"source": "test"})


def test_false_match_rate_from_counts() -> None:
    c = synthetic_calibration()
    assert c.n_impostor == 1000 and c.n_genuine == 100
    assert c.false_match_rate(0) == (1.0, False)
    assert c.false_match_rate(49.9) == (pytest.approx(0.002), False)  # last two bins
    assert c.false_match_rate(60) == (pytest.approx(3 / 1000), True)  # rule of three
    assert c.false_non_match_rate(95) == pytest.approx(0.5)
    assert c.threshold_for_fmr(0.01) == pytest.approx(49.5)
    assert c.threshold_for_fmr(1e-4) is None  # 1000 impostors cannot show 1e-4


def test_calibration_round_trip(tmp_path) -> None:
    c = synthetic_calibration()
    path = tmp_path / "c.json"
    c.save(path)
    loaded = Calibration.load(path)
    assert np.array_equal(loaded.impostor_counts, c.impostor_counts)
    assert json.loads(path.read_text())["thresholds_for_fmr"]["0.01"] == pytest.approx(49.5)


def test_shipped_calibration_is_measured() -> None:
    c = Calibration.load()
    assert len(c.impostor_counts) == GRID_SIZE
    assert c.n_impostor > 10_000_000  # all cross-identity pairs of LFW
    t3, t4 = c.threshold_for_fmr(1e-3), c.threshold_for_fmr(1e-4)
    assert t3 is not None and t4 is not None and t4 > t3
    fmr, _ = c.false_match_rate(t4)
    assert fmr <= 1e-4


def test_registry_entries_are_complete() -> None:
    for spec in REGISTRY.values():
        assert spec.description and spec.source and spec.input_size
        if spec.file:
            assert len(spec.sha256) == 64 and spec.size_bytes > 0
            assert model_path(spec.name).is_file()
    descriptor = get_spec("resnet128")
    assert descriptor.embedding_size == 128 and descriptor.metric == "euclidean"
    assert descriptor.measured  # the accuracy we measured is recorded


def test_broken_model_files_name_the_file(tmp_path) -> None:
    spec = get_spec("cnn")
    truncated = tmp_path / "mmod_truncated.dat"
    truncated.write_bytes(model_path("cnn").read_bytes()[:1000])
    with pytest.raises(ModelFileError, match=r"mmod_truncated\.dat.*truncated"):
        _verify(str(truncated), spec.sha256, spec.size_bytes)
    tampered = tmp_path / "mmod_tampered.dat"
    data = bytearray(model_path("cnn").read_bytes())
    data[500] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"mmod_tampered\.dat has SHA-256"):
        _verify(str(tampered), spec.sha256, spec.size_bytes)
    with pytest.raises(ModelFileError, match="missing"):
        _verify(str(tmp_path / "absent.dat"), spec.sha256, spec.size_bytes)
    with pytest.raises(ModelFileError, match="no model named"):
        get_spec("nope")


def test_score_scales_are_monotone_invertible_and_refuse_bad_knots() -> None:
    from faceledger.vision.similarity import DLIB_SCALE, ScoreScale

    sface = Calibration.load(recognizer="sface").scale
    distances = np.linspace(0.0, 2.0, 401)
    for scale in (DLIB_SCALE, sface):
        similarities = scale.similarity(distances)
        assert np.all(np.diff(similarities) <= 0) and np.all(np.diff(similarities[50:300]) < 0)
        for s in (0.5, 50, 80, 99, 99.9, 99.99):
            assert scale.similarity(scale.distance(s)) == pytest.approx(s, abs=1e-6)
        # Beyond the last knot the scale runs on; it never turns back.
        assert scale.similarity(0.0) > scale.similarity(0.05) > 99.9
    assert DLIB_SCALE.similarity(0.6) == pytest.approx(50)
    with pytest.raises(ValueError):
        ScoreScale((0.5, 0.4), (1.0, 0.0))  # distances must rise
    with pytest.raises(ValueError):
        ScoreScale((0.4, 0.5), (0.0, 1.0))  # similarity must fall as distance grows
    with pytest.raises(ValueError):
        sface.distance(100.0)


def test_a_similarity_means_the_same_false_match_rate_under_both_models() -> None:
    """SFace's scale was pinned to dlib's table: at every threshold a policy can set, its own
    measured rate (87 M LFW impostor pairs) is within a few per cent of dlib's."""
    dlib, sface = Calibration.load(), Calibration.load(recognizer="sface")
    assert sface.n_impostor == dlib.n_impostor > 80_000_000
    for similarity in (50, 80, 90, 95, 98, 99, 99.5):
        ours, _ = sface.false_match_rate(similarity)
        theirs, _ = dlib.false_match_rate(similarity)
        assert ours == pytest.approx(theirs, rel=0.05), similarity
    # ... and the second model misses far fewer true matches at the investigative floor.
    assert sface.false_non_match_rate(99) < dlib.false_non_match_rate(99) / 10


def test_matched_scale_pins_each_rate_to_the_reference_similarity() -> None:
    from faceledger.vision.similarity import matched_scale

    reference = Calibration.load()
    # A model whose impostor distances are uniform on [1, 2]: FMR f is reached at 1 + f.
    scale = matched_scale(reference, lambda fmr: 1.0 + fmr)
    for fmr in (0.1, 1e-2, 1e-3, 1e-4):
        expected = reference.similarity_at_fmr(fmr)
        assert scale.similarity(1.0 + fmr) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="too few"):
        matched_scale(reference, lambda fmr: None)


def test_face_models_are_named_by_recognizer_or_version() -> None:
    import typing

    from faceledger.config import FaceModelName
    from faceledger.errors import InvalidParameterError
    from faceledger.vision.models import FACE_MODELS, face_model

    assert face_model("sface") is face_model("sface-2021dec/1.0")
    assert face_model("dlib").version == "dlib-resnet128-flip/1.0"  # existing collections'
    assert face_model("sface-int8").version == "sface-2021dec-int8/1.0"
    assert {m.recognizer for m in FACE_MODELS.values()} == {"dlib", "sface", "sface-int8"}
    # The names settings and the APIs accept are exactly the registry's.
    assert set(typing.get_args(FaceModelName)) == {m.recognizer for m in FACE_MODELS.values()}
    with pytest.raises(InvalidParameterError, match="unknown face model"):
        face_model("arcface")
