from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import InvalidParameterError
from faceledger.imaging import load_image
from faceledger.vision import Box, FaceEngine
from tests.conftest import DLIB_FACES, EXAMPLES, require


def labelled_boxes() -> list[tuple[str, list[Box]]]:
    images = []
    for name in ("training.xml", "testing.xml"):
        root = ET.parse(require(DLIB_FACES / name)).getroot()
        for image in root.iter("image"):
            boxes = [
                Box(*(float(b.get(k)) for k in ("left", "top", "width", "height")))
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ]
            images.append((image.get("file"), boxes))
    return images


def test_boxes_match_dlibs_hand_labels(engine: FaceEngine) -> None:
    matched = total = extra = 0
    for file, boxes in labelled_boxes():
        faces = engine.detect(DLIB_FACES / file)
        best = [max((b.iou(f.box) for f in faces), default=0.0) for b in boxes]
        matched += sum(iou >= 0.5 for iou in best)
        total += len(boxes)
        extra += max(0, len(faces) - len(boxes))
    assert total >= 40
    assert matched / total >= 0.95  # measured: 43 of 43
    assert extra <= 1  # measured: 0


def test_dogs_have_no_faces(engine: FaceEngine) -> None:
    assert engine.detect(require(DLIB_FACES / "dogs.jpg")) == []


def test_obama_matches_obama_not_biden(engine: FaceEngine) -> None:
    obama = engine.analyze(require(EXAMPLES / "obama.jpg"))[0]
    obama2 = engine.analyze(EXAMPLES / "obama2.jpg")[0]
    biden = engine.analyze(EXAMPLES / "biden.jpg")[0]
    same = engine.compare(obama, obama2)
    different = engine.compare(obama, biden)
    assert same.distance < 0.5 and same.similarity > 90
    assert different.distance > 0.7 and different.similarity < 5
    assert same.false_match_rate < different.false_match_rate


def test_many_faces_in_one_image(engine: FaceEngine) -> None:
    faces = engine.analyze(require(DLIB_FACES / "2008_004176.jpg"))
    assert len(faces) == 7
    areas = [f.box.area for f in faces]
    assert areas == sorted(areas, reverse=True)  # largest first
    assert all(f.embedding is not None and f.embedding.shape == (128,) for f in faces)


def test_group_photo_finds_each_person(engine: FaceEngine) -> None:
    obama = engine.analyze(require(EXAMPLES / "obama.jpg"))[0]
    group = engine.analyze(EXAMPLES / "knn_examples" / "test" / "obama_and_biden.jpg")
    similarities = sorted((engine.compare(obama, f).similarity for f in group), reverse=True)
    assert len(group) >= 2
    assert similarities[0] > 90 and similarities[1] < 20


def test_exif_rotated_copy_gives_the_same_face(engine: FaceEngine, obama_bytes: bytes) -> None:
    upright = Image.open(io.BytesIO(obama_bytes))
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 counter-clockwise to display"
    buffer = io.BytesIO()
    upright.rotate(-90, expand=True).save(buffer, "PNG", exif=exif)
    original = engine.analyze(obama_bytes)[0]
    rotated = engine.analyze(buffer.getvalue())[0]
    assert original.box.iou(rotated.box) > 0.9
    assert engine.compare(original, rotated).distance < 0.1


def test_grayscale_and_32bit_png(engine: FaceEngine, obama_bytes: bytes) -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(obama_bytes)).convert("L").save(buffer, "PNG")
    gray = engine.analyze(buffer.getvalue())
    color = engine.analyze(obama_bytes)
    assert len(gray) == 1 and engine.compare(gray[0], color[0]).similarity > 90
    assert len(engine.detect(require(EXAMPLES.parent / "tests/test_images/32bit.png"))) == 1


def test_embed_given_box_and_array_input(engine: FaceEngine, obama_bytes: bytes) -> None:
    rgb = load_image(obama_bytes)
    detected = engine.analyze(rgb)[0]
    (given,) = engine.embed(rgb, [detected.box])
    assert given.detector == "given"
    assert np.allclose(given.embedding, detected.embedding, atol=1e-6)


def test_flip_fusion_changes_the_descriptor_slightly(obama_bytes: bytes) -> None:
    plain = FaceEngine(flip_fusion=False).analyze(obama_bytes)[0]
    fused = FaceEngine(flip_fusion=True).analyze(obama_bytes)[0]
    gap = float(np.linalg.norm(plain.embedding - fused.embedding))
    assert 0.0 < gap < 0.2


def test_cnn_detector_agrees_with_hog_on_a_portrait(obama_bytes: bytes) -> None:
    engine = FaceEngine(detector="cnn", upsample=0)
    faces = engine.detect(obama_bytes)
    assert len(faces) == 1 and faces[0].detector == "cnn"
    hog = FaceEngine().detect(obama_bytes)[0]
    assert faces[0].box.iou(hog.box) > 0.5


def test_empty_inputs(engine: FaceEngine, obama_bytes: bytes) -> None:
    assert engine.embed(obama_bytes, []) == []
    blank = np.full((200, 200, 3), 128, dtype=np.uint8)
    assert engine.analyze(blank) == []


def test_bad_parameters() -> None:
    with pytest.raises(InvalidParameterError):
        FaceEngine(detector="magic")
    with pytest.raises(InvalidParameterError):
        FaceEngine(upsample=9)


def test_bad_arrays_and_vectors(engine: FaceEngine) -> None:
    with pytest.raises(InvalidParameterError):
        engine.detect(np.zeros((100, 100), dtype=np.uint8))
    with pytest.raises(InvalidParameterError):
        engine.compare(np.zeros(128), np.zeros(64))
