"""dlib's networks on ONNX Runtime against dlib itself, on real faces."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import dlib
import numpy as np
import pytest

from faceledger.errors import InvalidParameterError, ModelFileError
from faceledger.imaging import load_image
from faceledger.vision import FaceEngine
from faceledger.vision.dnn import architectures
from faceledger.vision.dnn.reader import read_network
from faceledger.vision.dnn.runtime import (
    OnnxDescriptor,
    OnnxMmodDetector,
    build_graph,
    graph_path,
    load_network,
    open_session,
)
from faceledger.vision.models import model_path
from tests.conftest import DLIB_FACES, LFW, require


def lfw_images(count: int) -> list[Path]:
    root = require(LFW) / "images"
    return sorted(root.glob("*/*.jpg"))[:count]


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inner_w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    inner_h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inner = max(0, inner_w) * max(0, inner_h)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inner / (area(a) + area(b) - inner)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_both_files_read_to_the_last_byte() -> None:
    descriptor = load_network("resnet128")
    kinds = [layer.kind for layer in descriptor.layers]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14
    assert descriptor.input["rows"] == descriptor.input["columns"] == 150
    assert descriptor.layers[-1].weights["weight"].shape == (256, 128)
    detector = load_network("cnn")
    assert [layer.kind for layer in detector.layers].count("con") == 7
    assert detector.loss["detector_windows"][0][:2] == (80, 80)
    assert detector.input["padding"] == 10 and detector.input["outer_padding"] == 11


def test_a_truncated_file_is_refused_naming_it(tmp_path) -> None:
    damaged = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    damaged.write_bytes(model_path("resnet128").read_bytes()[:5_000_000])
    with pytest.raises(ModelFileError, match=r"dlib_face_recognition_resnet_model_v1\.dat.*trunc"):
        read_network(damaged, architectures.face_descriptor())


def test_the_wrong_architecture_is_refused() -> None:
    with pytest.raises(ModelFileError, match="expected"):
        read_network(model_path("resnet128"), architectures.mmod_face_detector())


def test_onnx_descriptors_equal_dlibs_on_200_lfw_faces(model_cache) -> None:
    engine = FaceEngine(backend="dlib", flip_fusion=False, upsample=1)
    chips = []
    for path in lfw_images(230):
        found = engine._detect_with_chips(load_image(path))
        if found:
            chips.append(found[0][1])
    assert len(chips) >= 200
    batch = np.stack(chips[:200])
    reference = np.asarray(
        dlib.face_recognition_model_v1(str(model_path("resnet128"))).compute_face_descriptor(
            list(batch)
        ),
        dtype=np.float32,
    )
    ours = OnnxDescriptor(model_cache, threads=2)(batch)
    largest = float(np.abs(ours - reference).max())
    assert largest <= 1e-4  # measured: 3.6e-7 (median 5e-8)
    # Batches and single chips give the same numbers.
    one = OnnxDescriptor(model_cache, threads=1)(batch[:1])
    np.testing.assert_allclose(one[0], ours[0], atol=1e-6)


def _rects(detections) -> list[tuple[int, int, int, int]]:
    return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in detections]


def _assert_same_boxes(ours, theirs, where: str) -> None:
    assert len(ours) == len(theirs), where
    for mine, reference in zip(ours, theirs, strict=True):
        assert iou(mine, reference) >= 0.99, where


@pytest.fixture(scope="module")
def detectors(model_cache):
    return OnnxMmodDetector(model_cache, threads=2), dlib.cnn_face_detection_model_v1(
        str(model_path("cnn"))
    )


def test_mmod_boxes_equal_dlibs_on_its_sample_images(detectors) -> None:
    ours, reference = detectors
    images = sorted(require(DLIB_FACES).glob("*.jpg"))
    assert len(images) >= 8
    faces = 0
    for index, path in enumerate(images):
        rgb = load_image(path)
        # dlib needs ~4 s per upsampled photo: three of them cover the upsampling path.
        for upsample in (0, 1) if index < 3 else (0,):
            mine = ours(rgb, upsample)
            theirs = reference(rgb, upsample)
            where = f"{path.name} upsample {upsample}"
            _assert_same_boxes([d.rect for d in mine], _rects(theirs), where)
            scores = [d.confidence for d in theirs]
            np.testing.assert_allclose([d.score for d in mine], scores, atol=1e-4, err_msg=where)
            faces += len(mine)
    assert faces >= 40  # these photos hold crowds


def test_mmod_boxes_equal_dlibs_on_100_lfw_images(detectors) -> None:
    ours, reference = detectors
    for path in lfw_images(100):
        rgb = load_image(path)
        mine = [d.rect for d in ours(rgb, 0)]
        _assert_same_boxes(mine, _rects(reference(rgb, 0)), path.name)


def test_engine_backends_agree_end_to_end() -> None:
    paths = lfw_images(12)
    onnx_engine = FaceEngine(backend="onnx", cnn_fallback=True)
    dlib_engine = FaceEngine(backend="dlib", cnn_fallback=True)
    batched = onnx_engine.analyze_many(paths)
    for path, faces in zip(paths, batched, strict=True):
        reference = dlib_engine.analyze(path)
        assert [f.box for f in faces] == [f.box for f in reference]
        for mine, theirs in zip(faces, reference, strict=True):
            assert np.abs(mine.embedding - theirs.embedding).max() <= 1e-4
        single = onnx_engine.analyze(path)
        for mine, alone in zip(faces, single, strict=True):
            np.testing.assert_allclose(mine.embedding, alone.embedding, atol=1e-6)


def test_backend_options_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="backend"):
        FaceEngine(backend="tensorflow")
    with pytest.raises(InvalidParameterError, match="jitter"):
        FaceEngine(backend="onnx", jitter=2)
    with pytest.raises(InvalidParameterError, match="threads"):
        FaceEngine(threads=0)


def _build(cache: str) -> str:
    return str(build_graph("resnet128", Path(cache), force=True))


def test_graphs_are_cached_by_source_hash_and_built_safely_in_parallel(tmp_path) -> None:
    path = graph_path("resnet128", tmp_path)
    assert "55533b28a95800a5" in path.name  # the weight file's SHA-256
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        built = pool.map(_build, [str(tmp_path)] * 4)
    assert set(built) == {str(path)}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left
    session = open_session("resnet128", tmp_path, threads=1)
    assert session.get_inputs()[0].name == "chips"


def test_a_damaged_cached_graph_is_rebuilt(tmp_path) -> None:
    path = build_graph("cnn", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    open_session("cnn", tmp_path, threads=1)
    assert path.read_bytes() == good


def test_the_engine_is_safe_to_share_between_threads() -> None:
    # The service calls one engine from many request threads without a lock.
    from concurrent.futures import ThreadPoolExecutor

    paths = lfw_images(16)
    engine = FaceEngine(cnn_fallback=True, threads=1)
    serial = [engine.analyze(p) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(engine.analyze, paths))
    for alone, together in zip(serial, parallel, strict=True):
        assert [f.box for f in alone] == [f.box for f in together]
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(a.embedding, b.embedding)
