"""Video files in, sampled RGB frames out (PyAV, on FFmpeg's libraries).

Containers MP4, MOV, MKV, WebM, AVI and animated GIF with whatever codec FFmpeg decodes (H.264,
H.265, VP9, AV1, ...). Limits are checked from the container before decoding: file size,
duration and resolution (Rekognition's are 10 GB and 6 hours). Frames are sampled at a stated
rate: the first decoded frame at or after each multiple of ``1 / sample_fps`` seconds, with its
own presentation time in milliseconds, exact to the frame; rotation metadata is applied.
A file that cannot be opened is a :class:`InvalidVideoError`; one damaged halfway raises it
from the frame iterator, saying how far decoding got.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceledger.errors import InputNotFoundError, InvalidVideoError
from faceledger.imaging.decode import format_bytes


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 10 * 1024**3
    max_seconds: float = 6 * 3600
    max_pixels: int = 4096 * 2160
    min_side: int = 64


@dataclass(frozen=True)
class VideoMetadata:
    """What Rekognition's ``VideoMetadata`` reports, from the container and the stream."""

    codec: str
    duration_ms: int
    format: str
    frame_rate: float
    width: int  # as displayed, after rotation
    height: int
    rotation: int  # degrees clockwise applied to decoded frames
    frames: int  # as the container states (0 when it does not)


@dataclass(frozen=True)
class Frame:
    index: int  # the decoded frame's number (0-based) from where decoding began: the start, or
    # the key frame before a span's start
    timestamp_ms: int  # its presentation time from the start of the video
    rgb: np.ndarray
    # A smaller copy when one was asked for (``frames(shrink=...)``): FFmpeg's scaler makes it
    # in about 5 ms from the decoded picture where Pillow takes about 20 ms from the RGB one.
    small: np.ndarray | None = None


def probe(path: Path, limits: VideoLimits | None = None) -> VideoMetadata:
    """Open ``path``, check the limits, and describe it; decodes nothing."""
    limits = limits or VideoLimits()
    import av  # imported where used: PyAV loads FFmpeg's libraries

    if not path.is_file():
        raise InputNotFoundError(f"no such video file: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidVideoError("EMPTY", "the video file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise InvalidVideoError(
            "TOO_LARGE",
            f"the video is {format_bytes(size)}; the limit is {format_bytes(limits.max_bytes)}",
        )
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _describe(container, limits)
    except av.error.FFmpegError as error:
        raise InvalidVideoError(
            "UNSUPPORTED_FORMAT", f"not a video FFmpeg can read ({_reason(error)})"
        ) from None


def _describe(container, limits: VideoLimits) -> VideoMetadata:
    if not container.streams.video:
        raise InvalidVideoError("UNSUPPORTED_FORMAT", "the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise InvalidVideoError("UNSUPPORTED_FORMAT", "the video stream has no frame size")
    try:
        first = next(container.decode(stream), None)
    except av_errors() as error:
        raise InvalidVideoError(
            "TRUNCATED", f"the first frame cannot be decoded ({_reason(error)})"
        ) from None
    if first is None:
        raise InvalidVideoError("TRUNCATED", "the video stream has no frames")
    rotation = _rotation(first)
    if rotation in (90, 270):
        width, height = height, width
    seconds = _duration_seconds(container, stream)
    if seconds > limits.max_seconds:
        raise InvalidVideoError(
            "TOO_LONG",
            f"the video lasts {seconds / 3600:.1f} hours; the limit is "
            f"{limits.max_seconds / 3600:g} hours",
        )
    if width * height > limits.max_pixels:
        raise InvalidVideoError(
            "TOO_MANY_PIXELS",
            f"the video is {width}x{height}; the limit is {limits.max_pixels / 1e6:.1f} "
            "megapixels a frame",
        )
    if min(width, height) < limits.min_side:
        raise InvalidVideoError(
            "TOO_SMALL", f"the video is {width}x{height}; both sides must be {limits.min_side}+"
        )
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    return VideoMetadata(
        codec=stream.codec_context.codec.canonical_name,  # "av1", whichever decoder
        duration_ms=round(seconds * 1000),
        format=container.format.name.split(",")[0],
        frame_rate=round(rate, 3),
        width=width,
        height=height,
        rotation=rotation,
        frames=int(stream.frames or 0),
    )


def frames(
    source: Path | np.ndarray,
    sample_fps: float | None = 5.0,
    limits: VideoLimits | None = None,
    shrink: Callable[[int, int], float] | None = None,
    *,
    span: tuple[float, float | None] = (0.0, None),
    metadata: VideoMetadata | None = None,
) -> Iterator[Frame]:
    """Decoded frames, sampled at ``sample_fps`` (None: every frame), oldest first. ``shrink``
    (height, width -> scale): each frame also comes scaled by it (area averaging), when below 1.

    ``span`` (start, end) in ms: only the frames from start up to (not including) end, as the
    whole file's sampling would pick them when start is one of :func:`segments`' starts;
    decoding begins at the key frame before start. ``source`` may be the file's bytes (a uint8
    array: a worker elsewhere reads it from memory) with its ``metadata`` from :func:`probe`.
    """
    if metadata is None:
        if not isinstance(source, Path):
            raise ValueError("a video given as bytes needs its metadata")
        metadata = probe(source, limits)
    start_ms, end_ms = span
    step = None if sample_fps is None else 1000.0 / sample_fps
    next_due = start_ms
    decoded, last_ms, reached_end = 0, start_ms, False
    try:
        for decoded, frame, last_ms in _decoded(source, start_ms):
            if last_ms + 0.5 < next_due:
                continue
            if end_ms is not None and last_ms + 0.5 >= end_ms:
                reached_end = True
                break
            if step is not None:
                next_due = (math.floor(last_ms / step) + 1) * step
            rgb = frame.to_ndarray(format="rgb24")
            small = None
            scale = shrink(frame.height, frame.width) if shrink else 1.0
            if scale < 0.95:
                small = frame.reformat(
                    width=max(1, round(frame.width * scale)),
                    height=max(1, round(frame.height * scale)),
                    format="rgb24",
                    interpolation="AREA",
                ).to_ndarray()
                small = _rotate(small, metadata.rotation)
            yield Frame(decoded, last_ms, _rotate(rgb, metadata.rotation), small)
    except av_errors() as error:
        where = f"after frame {decoded} " if start_ms == 0 else ""
        raise InvalidVideoError(
            "TRUNCATED",
            f"the video is damaged: decoding stopped {where}"
            f"({last_ms / 1000:.1f} s of {metadata.duration_ms / 1000:.1f} s): {_reason(error)}",
        ) from None
    # A file cut short often decodes without an error and simply ends early.
    frame_ms = 1000 / metadata.frame_rate if metadata.frame_rate else 100
    if not reached_end and metadata.duration_ms - last_ms > max(1000, 3 * frame_ms):
        raise InvalidVideoError(
            "TRUNCATED",
            f"the video is damaged: its frames end at {last_ms / 1000:.1f} s "
            f"of the {metadata.duration_ms / 1000:.1f} s it declares",
        )


def segments(
    metadata: VideoMetadata, sample_fps: float | None, seconds: float
) -> list[tuple[float, float | None]]:
    """The video cut into spans of about ``seconds`` each, for :func:`frames` to decode apart:
    each starts where the whole file's sampling has a due time, so together they sample exactly
    the frames the whole file does."""
    step = 1000.0 / sample_fps if sample_fps is not None else None
    starts = [0.0]
    while True:
        nominal = len(starts) * seconds * 1000
        if nominal >= metadata.duration_ms:
            break
        starts.append(math.ceil(nominal / step - 1e-9) * step if step else nominal)
    return list(zip(starts, [*starts[1:], None], strict=True))


def _decoded(source: Path | np.ndarray, start_ms: float) -> Iterator[tuple[int, object, float]]:
    """(number, frame, ms from the start) of the video stream's frames from the key frame
    before ``start_ms``; from the very start when the container cannot seek there."""
    import av

    for attempt in ("seek", "from the start") if start_ms > 0 else ("from the start",):
        with av.open(_readable(source), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first = stream.start_time or 0
            base = stream.time_base
            if attempt == "seek":
                try:
                    container.seek(first + int(start_ms / 1000 / base), stream=stream)
                except av_errors():
                    continue
            for number, frame in enumerate(container.decode(stream)):
                pts = frame.pts if frame.pts is not None else first
                ms = max(0, round(float((pts - first) * base) * 1000)) if base else 0
                if attempt == "seek" and number == 0 and ms > start_ms + 0.5:
                    break  # landed past the start (no key frame index): decode from the start
                yield number, frame, ms
            else:
                return


def _readable(source: Path | np.ndarray) -> object:
    return str(source) if isinstance(source, Path) else _MemoryFile(source)


class _MemoryFile:
    """A read-only file over bytes in memory, without copying them (PyAV reads through it)."""

    def __init__(self, data: np.ndarray) -> None:
        self._view = memoryview(data).cast("B")
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(len(self._view), self._position + size)
        chunk = self._view[self._position : end].tobytes()
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._view))[whence]
        self._position = max(0, min(len(self._view), base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True


def _rotation(frame) -> int:
    """Clockwise degrees that turn decoded frames upright: the display matrix states the
    counter-clockwise rotation (phones record sideways and say so there)."""
    return (-round(float(getattr(frame, "rotation", 0) or 0) / 90) * 90) % 360


def _rotate(rgb: np.ndarray, degrees: int) -> np.ndarray:
    if degrees == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-(degrees // 90)))


def av_errors() -> type[Exception]:
    import av

    return av.error.FFmpegError


def _duration_seconds(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _reason(error: Exception) -> str:
    return str(getattr(error, "strerror", None) or error)[:200]
