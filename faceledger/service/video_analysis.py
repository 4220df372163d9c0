"""A video job's pixel work: frames decoded, faces detected and described, then followed.

Two ways, with the same results. On this process's threads, one thread decodes and detects
while the job's thread describes and tracks (:func:`follow_faces`). On a Ray cluster, the video
is cut into segments of ``video_segment_seconds`` (:func:`faceledger.imaging.video.segments`),
each decoded, detected and described by one task (:func:`analyze_segment`), and the job's
process follows the faces through the segments in order (:func:`follow_segments`). Detection
keeps a little state across frames — doubtful boxes judged once where they stay
(``SeenBoxes``), frames detected in pairs — and both ways start it afresh at each segment's
start, so where the work ran never changes what was found.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from faceledger.errors import FaceledgerError
from faceledger.imaging.video import Frame, VideoMetadata, frames, segments
from faceledger.service.workers import EngineSpec, RayWorkers, engine_for
from faceledger.vision import Face, FaceEngine
from faceledger.vision.engine import SeenBoxes
from faceledger.vision.tracking import Tracker

T = TypeVar("T")
DETECT_BATCH = 2  # frames detected at once on the engine's threads
SCAN_FPS = 5.0  # whole frames looked at a second when more frames than that are sampled


@dataclass(frozen=True)
class FramePlan:
    """What a job's frame work depends on beyond the frames themselves."""

    # A faceless frame gets the CNN fallback when it is this close after a whole second: about
    # one sampled frame a second (a face missed in one frame is usually found in the next).
    cnn_window_ms: float
    spans: tuple[tuple[float, float | None], ...]  # the segments (start, end) in ms
    # Sampled faster than SCAN_FPS, YuNet looks at the whole frame every scan_ms (the first
    # frame at or after each multiple) and, in the frames between, only around the faces of
    # the frame before: someone new is found at the next whole look. 0: every frame whole.
    scan_ms: float = 0.0

    @classmethod
    def of(
        cls,
        metadata: VideoMetadata,
        sample_fps: float | None,
        segment_seconds: float,
        scan_fps: float = SCAN_FPS,
    ) -> FramePlan:
        period = 1000.0 / metadata.frame_rate if metadata.frame_rate else 100.0
        step = max(period, 1000.0 / sample_fps if sample_fps else 0.0)
        scan = 1000.0 / scan_fps if scan_fps and step < 1000.0 / scan_fps - 1e-6 else 0.0
        return cls(step, tuple(segments(metadata, sample_fps, segment_seconds)), scan)

    def cnn_due(self, timestamp_ms: int) -> bool:
        return timestamp_ms % 1000 < self.cnn_window_ms

    def next_scan(self, timestamp_ms: int) -> float:
        """When the next whole look is due after one at ``timestamp_ms``."""
        if not self.scan_ms:
            return 0.0
        return (math.floor(timestamp_ms / self.scan_ms) + 1) * self.scan_ms


@dataclass(frozen=True)
class SeenFrame:
    """A frame's faces without its pixels: what a segment task sends back."""

    timestamp_ms: int
    faces: list[Face]


def follow_faces(
    engine: FaceEngine, decoded: Iterable[Frame], tracker: Tracker, plan: FramePlan
) -> Iterator[tuple[Frame, list[Face], list[int]]]:
    """(frame, its faces, each face's track) in order, on this process. One thread decodes
    and detects, on the engine's threads (the detectors release the GIL), while this one
    describes and tracks the frames before: only the faces the tracker needs described are
    embedded (every face at 5 frames a second; a few times a second per person when every
    frame is analysed)."""
    for frame, faces in ahead(_detected(engine, ahead(iter(decoded)), plan)):
        needed = tracker.needs_descriptor(frame.timestamp_ms, faces)
        wanted = [f for f, need in zip(faces, needed, strict=True) if need]
        described = iter(engine.embed(frame.rgb, wanted) if wanted else [])
        faces = [next(described) if need else f for f, need in zip(faces, needed, strict=True)]
        yield frame, faces, tracker.update(frame.timestamp_ms, faces)


def _detected(
    engine: FaceEngine, decoded: Iterable[Frame], plan: FramePlan
) -> Iterator[tuple[Frame, list[Face]]]:
    """Each frame's faces, without descriptors. Whole frames are looked at, in pairs, as
    ``plan.scan_ms`` says, the frames between only around the faces of the frame before. The
    CNN fallback runs only on faceless whole looks just after a whole second, and YuNet's
    doubtful boxes are checked once where they stay put (``SeenBoxes``). All of it starts
    afresh at each segment's start."""
    boundaries = iter(start for start, _ in plan.spans[1:])
    boundary = next(boundaries, None)
    seen = SeenBoxes()
    pending: list[Frame] = []  # whole looks waiting to be run as a pair
    before: list[Face] | None = None  # the last frame's faces; None at a segment's start
    scan_due = 0.0

    def flush() -> Iterator[tuple[Frame, list[Face]]]:
        nonlocal before
        found = engine.detect_many(
            [f.rgb for f in pending],
            cnn_fallback=False,
            seen=seen,
            small=[f.small for f in pending],
        )
        for frame, faces in zip(pending, found, strict=True):
            if not faces and plan.cnn_due(frame.timestamp_ms):
                faces = engine.detect_many([frame.rgb], cnn_fallback=True)[0]
            before = faces
            yield frame, faces
        pending.clear()

    for frame in decoded:
        if boundary is not None and frame.timestamp_ms + 0.5 >= boundary:
            if pending:
                yield from flush()
            seen, before = SeenBoxes(), None
            while boundary is not None and frame.timestamp_ms + 0.5 >= boundary:
                boundary = next(boundaries, None)
        if before is None or frame.timestamp_ms + 0.5 >= scan_due:
            scan_due = plan.next_scan(frame.timestamp_ms)
            pending.append(frame)
            if len(pending) == DETECT_BATCH:
                yield from flush()
            continue
        if pending:
            yield from flush()
        assert before is not None
        if before:
            near = [[f.box for f in before]]
            before = engine.detect_many(
                [frame.rgb], cnn_fallback=False, seen=seen, small=[frame.small], near=near
            )[0]
        yield frame, before
    if pending:
        yield from flush()


def analyze_segment(
    spec: EngineSpec,
    video: np.ndarray,
    metadata: VideoMetadata,
    sample_fps: float | None,
    span: tuple[float, float | None],
    plan: FramePlan,
) -> list[SeenFrame] | FaceledgerError:
    """What a Ray task runs: one segment's frames decoded from the video's bytes, every face
    detected and described. A damaged video's error comes back as the result (a task that
    raises would be retried)."""
    engine = engine_for(spec)
    try:
        decoded = frames(video, sample_fps, shrink=engine.yunet_scale, span=span, metadata=metadata)
        return [
            SeenFrame(frame.timestamp_ms, engine.embed(frame.rgb, faces) if faces else [])
            for frame, faces in _detected(engine, decoded, plan)
        ]
    except FaceledgerError as error:
        return error


def follow_segments(
    workers: RayWorkers,
    spec: EngineSpec,
    path: Path,
    metadata: VideoMetadata,
    sample_fps: float | None,
    tracker: Tracker,
    plan: FramePlan,
) -> Iterator[tuple[SeenFrame, list[Face], list[int]]]:
    """:func:`follow_faces` with the segments analysed as Ray tasks: the video goes into the
    cluster's object store once, and the faces come back in order to be followed here. Tasks
    describe every face; the descriptors the tracker would not have asked for are dropped, so
    the tracks are the local path's."""
    video = workers.put(np.asarray(np.memmap(path, dtype=np.uint8, mode="r")))
    tasks = (
        (number, (spec, video, metadata, sample_fps, span, plan))
        for number, span in enumerate(plan.spans)
    )
    for seen in _in_order(workers.run(analyze_segment, tasks)):
        if isinstance(seen, FaceledgerError):
            raise seen
        for frame in seen:
            needed = tracker.needs_descriptor(frame.timestamp_ms, frame.faces)
            faces = [
                f if need else replace(f, embedding=None)
                for f, need in zip(frame.faces, needed, strict=True)
            ]
            yield frame, faces, tracker.update(frame.timestamp_ms, faces)


def _in_order(finished: Iterator[tuple[int, T]]) -> Iterator[T]:
    """Outcomes keyed 0, 1, 2 ... as they finish, yielded in key order."""
    waiting: dict[int, T] = {}
    for number in itertools.count():
        while number not in waiting:
            key, outcome = next(finished, (None, None))
            if key is None:
                return
            waiting[key] = outcome
        yield waiting.pop(number)


def ahead(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """``items`` produced on a thread of its own, up to ``depth`` ahead of the consumer; its
    exceptions are raised here, in order; a consumer that stops early stops it."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def hand(kind: str, value: Any) -> bool:
        """Put one message unless the consumer has gone; whether it was put."""
        while not stop.is_set():
            try:
                handoff.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand("item", item):
                    return
            hand("end", None)
        except BaseException as error:  # handed to the consumer, raised there
            hand("error", error)

    worker = threading.Thread(target=produce, name="video-frames", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=30)
