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
