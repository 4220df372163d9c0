"""Decoding and detection run a thread ahead of describing and tracking: what that thread
raises reaches the job in order, and a job that stops early stops it."""

from __future__ import annotations

import threading

import pytest

from faceledger.errors import InvalidVideoError
from faceledger.imaging.video import frames
from faceledger.service.video_analysis import ahead
from tests.conftest import DATA, require

CLIP = DATA / "videos" / "one-by-one-person-detection.mp4"


def test_a_damaged_clip_fails_after_the_frames_before_the_damage(tmp_path) -> None:
    data = require(CLIP).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 10])
    direct = []
    with pytest.raises(InvalidVideoError) as plain:
        for frame in frames(cut, 5.0):
            direct.append(frame.timestamp_ms)
    through = []
    with pytest.raises(InvalidVideoError) as handed:
        for frame in ahead(iter(frames(cut, 5.0))):
            through.append(frame.timestamp_ms)
    assert through == direct and len(direct) > 5
    assert str(handed.value) == str(plain.value)


def test_a_consumer_that_stops_stops_the_producer() -> None:
    stream = ahead(iter(frames(require(CLIP), None)), depth=2)
    first = [next(stream).timestamp_ms for _ in range(3)]
    assert first == sorted(first)
    stream.close()  # what a cancelled job's loop does when it returns
    assert not [t for t in threading.enumerate() if t.name == "video-frames"]
