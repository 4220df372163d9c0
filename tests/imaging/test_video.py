"""Video decoding: containers and codecs written here with PyAV from a real clip's frames,
rotation metadata, limits and damage."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from faceledger.errors import InvalidVideoError
from faceledger.imaging.video import VideoLimits, frames, probe, segments
from tests.conftest import DATA, require

SOURCE = "short_hamilton_clip.mp4"


@pytest.fixture(scope="module")
def source_frames() -> list[np.ndarray]:
    clip = require(DATA / "videos" / SOURCE)
    return [f.rgb for f in frames(clip, 10)][:20]  # 2 s of real footage at 10 per second


def write(path, codec: str, images: list[np.ndarray], rotation: int = 0) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        stream.time_base = Fraction(1, 10)
        if rotation:
            stream.set_display_rotation(rotation)
        for number, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(
    ("name", "codec", "expected"),
    [
        ("h264.mp4", "libx264", "h264"),
        ("h265.mkv", "libx265", "hevc"),
        ("vp9.webm", "libvpx-vp9", "vp9"),
        ("av1.mkv", "libsvtav1", "av1"),
        ("h264.mov", "libx264", "h264"),
        ("mpeg4.avi", "mpeg4", "mpeg4"),
        ("animated.gif", "gif", "gif"),
    ],
)
def test_containers_and_codecs(tmp_path, source_frames, name, codec, expected) -> None:
    path = tmp_path / name
    try:
        write(path, codec, source_frames)
    except (av.error.FFmpegError, ValueError) as error:
        pytest.skip(f"this PyAV build cannot write {codec}: {error}")
    meta = probe(path)
    assert meta.codec == expected and (meta.width, meta.height) == (640, 360)
    decoded = list(frames(path, 5))
    assert [f.timestamp_ms for f in decoded] == list(range(0, 2000, 200))
    original = source_frames[decoded[3].index].astype(int)
    assert np.abs(decoded[3].rgb.astype(int) - original).mean() < 25  # the same picture


def test_rotation_metadata_is_applied(tmp_path, source_frames) -> None:
    path = tmp_path / "phone.mp4"
    write(path, "libx264", source_frames, rotation=90)  # counter-clockwise, as phones record
    meta = probe(path)
    assert (meta.width, meta.height, meta.rotation) == (360, 640, 270)
    first = next(frames(path, 5))
    assert first.rgb.shape == (640, 360, 3)
    upright = np.rot90(source_frames[0], k=1)  # what a player shows
    assert np.abs(first.rgb.astype(int) - upright.astype(int)).mean() < 25


def test_limits_and_damage(tmp_path, source_frames) -> None:
    path = tmp_path / "clip.mp4"
    write(path, "libx264", source_frames)
    with pytest.raises(InvalidVideoError) as caught:
        probe(path, VideoLimits(max_seconds=1.0))
    assert caught.value.code == "TOO_LONG"
    with pytest.raises(InvalidVideoError) as caught:
        probe(path, VideoLimits(max_bytes=100))
    assert caught.value.code == "TOO_LARGE"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidVideoError) as caught:
        probe(empty)
    assert caught.value.code == "EMPTY"
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InvalidVideoError) as caught:
        probe(text)
    assert caught.value.code == "UNSUPPORTED_FORMAT"


def test_frames_come_with_a_smaller_copy_when_asked(tmp_path, source_frames) -> None:
    """The copy YuNet sees, made by FFmpeg's scaler: the size asked for, the same picture as
    Pillow would make (rotation applied to both), and none when no shrinking is asked."""
    from PIL import Image

    clip = require(DATA / "videos" / "facenet-pytorch-video.mp4")
    frame = next(iter(frames(clip, 5.0, shrink=lambda height, width: 0.7)))
    assert frame.small is not None and frame.small.shape == (756, 1344, 3)
    pillow = np.asarray(Image.fromarray(frame.rgb).resize((1344, 756), Image.Resampling.BILINEAR))
    assert np.abs(frame.small.astype(int) - pillow.astype(int)).mean() < 3.0
    assert next(iter(frames(clip, 5.0))).small is None
    assert next(iter(frames(clip, 5.0, shrink=lambda height, width: 1.0))).small is None
    rotated = tmp_path / "rotated.mp4"
    write(rotated, "libx264", source_frames, rotation=90)
    turned = next(iter(frames(rotated, 5.0, shrink=lambda height, width: 0.5)))
    assert turned.small is not None
    assert turned.small.shape[:2] == (turned.rgb.shape[0] // 2, turned.rgb.shape[1] // 2)


@pytest.mark.parametrize(
    "name",
    ["short_hamilton_clip.mp4", "face-demographics-walking.gif", "one-by-one-person-detection.mp4"],
)
@pytest.mark.parametrize("sample_fps", [5.0, 7.0, None])
def test_segments_decoded_apart_are_the_whole_file_sampled(name, sample_fps) -> None:
    """What lets a cluster decode a video in pieces: the segments' frames, decoded from the
    file's bytes in memory, are exactly the frames (times and pixels) the whole file gives."""
    clip = require(DATA / "videos" / name)
    metadata = probe(clip)
    seconds = 2.0 if metadata.duration_ms < 20_000 else 25.0
    whole = [(f.timestamp_ms, f.rgb) for f in frames(clip, sample_fps)]
    data = np.fromfile(clip, dtype=np.uint8)
    spans = segments(metadata, sample_fps, seconds)
    assert len(spans) >= 2 and spans[0][0] == 0 and spans[-1][1] is None
    pieces = [
        (f.timestamp_ms, f.rgb)
        for span in spans
        for f in frames(data, sample_fps, span=span, metadata=metadata)
    ]
    assert [t for t, _ in pieces] == [t for t, _ in whole]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(pieces, whole, strict=True))


def test_a_late_segment_is_decoded_from_a_key_frame_not_the_start() -> None:
    clip = require(DATA / "videos" / "one-by-one-person-detection.mp4")  # 10 fps, 139 s
    first = next(frames(clip, None, span=(100_000.0, None)))
    assert first.timestamp_ms == 100_000
    assert first.index < 300  # counted from the key frame sought to, not 1000 frames in
