"""Following faces through every frame of a real clip while describing only some of them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from faceledger.imaging.video import frames, probe
from faceledger.service.video_analysis import FramePlan, follow_faces
from faceledger.vision import FaceEngine
from faceledger.vision.tracking import Tracker
from faceledger.vision.types import Box
from tests.conftest import DATA, EXAMPLES, require

CLIP = DATA / "videos" / "short_hamilton_clip.mp4"


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(cnn_fallback=True)


def follow(engine: FaceEngine, describe_every_ms: int, seconds: float = 3.0, scan_fps: float = 5.0):
    path = require(CLIP)
    tracker = Tracker(describe_every_ms=describe_every_ms)
    decoded = (f for f in frames(path, None) if f.timestamp_ms <= seconds * 1000)
    plan = FramePlan.of(probe(path), None, segment_seconds=10, scan_fps=scan_fps)
    rows = [
        (frame.timestamp_ms, face, person)
        for frame, faces, people in follow_faces(engine, decoded, tracker, plan)
        for face, person in zip(faces, people, strict=True)
    ]
    return tracker, rows


def test_every_frame_followed_with_a_fraction_of_the_descriptors(engine) -> None:
    everyone, all_rows = follow(engine, describe_every_ms=0)  # every face described
    sparse, rows = follow(engine, describe_every_ms=150)
    assert [(t, f.box) for t, f, _ in rows] == [(t, f.box) for t, f, _ in all_rows]
    described = sum(f.embedding is not None for _, f, _ in rows)
    assert all(f.embedding is not None for _, f, _ in all_rows)
    assert described <= 0.4 * len(rows), (described, len(rows))  # 30 fps: about 1 in 6
    # The same people, each face in the same person's track.
    assert len(sparse.tracks) == len(everyone.tracks)
    agree = sum(a[2] == b[2] for a, b in zip(rows, all_rows, strict=True))
    assert agree >= 0.97 * len(rows), (agree, len(rows))
    # Every track can be searched: it holds described faces, and its descriptor agrees with
    # the one made from every face.
    for track, full in zip(sparse.tracks, everyone.tracks, strict=True):
        assert track.best and all(s.face.embedding is not None for s in track.best)
        assert engine.compare(track.descriptor, full.descriptor).similarity > 95


def test_every_frame_with_whole_looks_five_times_a_second(engine) -> None:
    """Between whole looks YuNet looks only around the faces of the frame before: the same
    people, and nearly every face a whole look at each frame finds, in the same place."""
    everywhere, whole = follow(engine, describe_every_ms=150, seconds=6.0, scan_fps=0.0)
    scanned, near = follow(engine, describe_every_ms=150, seconds=6.0)
    assert len(scanned.tracks) == len(everywhere.tracks)
    by_time: dict[int, list[Box]] = {}
    for t, face, _ in whole:
        by_time.setdefault(t, []).append(face.box)
    kept = sum(any(face.box.iou(b) >= 0.5 for b in by_time.get(t, [])) for t, face, _ in near)
    assert kept >= 0.98 * len(near), (kept, len(near))  # nothing found that a whole look misses
    assert len(near) >= 0.95 * len(whole), (len(near), len(whole))


def test_which_faces_need_a_descriptor(engine) -> None:
    faces = engine.analyze(require(EXAMPLES / "two_people.jpg"))
    assert len(faces) == 2
    tracker = Tracker(describe_every_ms=150)
    assert tracker.needs_descriptor(0, faces) == [True, True]  # nobody known yet
    tracker.update(0, faces)
    moved = [replace(f, embedding=None) for f in faces]
    assert tracker.needs_descriptor(40, moved) == [False, False]  # each on its own track
    assert tracker.needs_descriptor(150, moved) == [True, True]  # time to describe again
    # A face where no track is, or two faces on one track, is described: it is someone new,
    # or either could be that track's person.
    box = faces[0].box
    elsewhere = Box(box.left + 3 * box.width, box.top, box.width, box.height)
    assert tracker.needs_descriptor(40, [replace(moved[0], box=elsewhere)]) == [True]
    assert tracker.needs_descriptor(40, [moved[0], moved[0]]) == [True, True]


def test_tracker_thresholds_follow_the_models_scale(engine) -> None:
    """dlib's tracker distances (0.6, 0.45) are similarities 50 and 97.7; an SFace tracker asks
    its descriptors for the same similarities, not for dlib's distances."""
    dlib = Tracker.on_scale_of(engine)
    assert dlib.same_person == pytest.approx(0.6) and dlib.rejoin == pytest.approx(0.45, abs=1e-3)
    sface_engine = FaceEngine.for_model("sface")
    sface = Tracker.on_scale_of(sface_engine)
    assert sface_engine.match_for_distance(sface.same_person).similarity == pytest.approx(50)
    assert sface_engine.match_for_distance(sface.rejoin).similarity == pytest.approx(97.7)
    assert sface.rejoin < sface.same_person and sface.same_person > 1.0  # unit-length vectors
