"""Following faces across sampled video frames: a pure function of the frames' faces.

A face joins the track it overlaps most (box IoU) among tracks seen within ``max_gap_ms``, when
their descriptors also agree (distance under ``same_person``); failing overlap, the track whose
descriptor is nearest within ``rejoin`` (a person who walked behind someone and came back).
Otherwise it starts a track. Each track keeps its ``keep`` best described faces (quality: size,
sharpness, detector confidence, how frontal) for searching, so a search costs per person, not
per frame. Tracks are numbered in order of first appearance: Rekognition's ``Person.Index``.

Descriptors are the expensive part of following faces through every frame, and a face that
overlaps a track described a moment ago is almost surely that track's person: such a face needs
none (:meth:`Tracker.needs_descriptor`), so each person is described about every
``describe_every_ms`` whatever the frame rate, and every face that starts, rejoins or could
belong to two tracks is described.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.vision.types import Box, Face

if TYPE_CHECKING:
    from faceledger.vision.engine import FaceEngine


@dataclass(frozen=True)
class Sighting:
    timestamp_ms: int
    face: Face


@dataclass
class Track:
    index: int
    sightings: list[Sighting] = field(default_factory=list)
    best: list[Sighting] = field(default_factory=list)
    described_ms: int | None = None  # when a face of this track last had a descriptor
    _sum: np.ndarray | None = None
    _described: int = 0

    @property
    def last(self) -> Sighting:
        return self.sightings[-1]

    @property
    def descriptor(self) -> np.ndarray | None:
        """The mean of the track's descriptors, normalised as dlib's are (unit-ish length)."""
        if self._sum is None:
            return None
        return (self._sum / self._described).astype(np.float32)

    @property
    def first_ms(self) -> int:
        return self.sightings[0].timestamp_ms

    @property
    def last_ms(self) -> int:
        return self.sightings[-1].timestamp_ms

    def add(self, sighting: Sighting, keep: int) -> None:
        self.sightings.append(sighting)
        if sighting.face.embedding is None:
            return  # followed by overlap only: nothing to search with
        vector = sighting.face.embedding.astype(np.float64)
        self._sum = vector if self._sum is None else self._sum + vector
        self._described += 1
        self.described_ms = sighting.timestamp_ms
        self.best.append(sighting)
        self.best.sort(key=lambda s: -face_quality(s.face))
        del self.best[keep:]


def face_quality(face: Face) -> float:
    """How good a face is to search with: larger, sharper, more confident, more frontal."""
    q = face.quality
    frontal = math.cos(math.radians(min(abs(q.pose.yaw), 89))) * math.cos(
        math.radians(min(abs(q.pose.pitch), 89))
    )
    size = min(face.box.width, face.box.height)
    return size * min(q.sharpness, 100.0) / 100.0 * max(face.confidence, 0.05) * frontal


SAME_PERSON_SIMILARITY = 50.0
REJOIN_SIMILARITY = 97.7


@dataclass
class Tracker:
    max_gap_ms: int = 1500
    min_iou: float = 0.3
    same_person: float = 0.6  # descriptor distance: dlib's usual threshold
    rejoin: float = 0.45  # stricter, for joining a track without overlap
    rejoin_gap_ms: int = 10_000
    keep: int = 3
    describe_every_ms: int = 150  # under 5 sampled frames a second: each of those is described
    tracks: list[Track] = field(default_factory=list)

    @classmethod
    def on_scale_of(cls, engine: FaceEngine, **options: Any) -> Tracker:
        """A tracker whose descriptor thresholds are the engine's distances for the similarities
        dlib's 0.6 and 0.45 have (50 and 97.7): the same false match rates under any model."""
        return cls(
            same_person=engine.max_distance(SAME_PERSON_SIMILARITY),
            rejoin=engine.max_distance(REJOIN_SIMILARITY),
            **options,
        )

    def needs_descriptor(self, timestamp_ms: int, faces: Sequence[Face]) -> list[bool]:
        """For each of a frame's faces, whether it must be described before :meth:`update`: all
        but those that overlap exactly one live track described within ``describe_every_ms``,
        a track no other face of the frame overlaps."""
        claims: list[list[int]] = []
        for face in faces:
            claims.append(
                [
                    t
                    for t, track in enumerate(self.tracks)
                    if 0 < timestamp_ms - track.last_ms <= self.max_gap_ms
                    and _iou(track.last.face.box, face.box) >= self.min_iou
                ]
            )
        claimed = Counter(t for tracks in claims for t in tracks)
        needed = []
        for tracks in claims:
            if len(tracks) != 1 or claimed[tracks[0]] != 1:
                needed.append(True)
                continue
            described = self.tracks[tracks[0]].described_ms
            needed.append(described is None or timestamp_ms - described >= self.describe_every_ms)
        return needed

    def update(self, timestamp_ms: int, faces: Iterable[Face]) -> list[int]:
        """Assign this frame's faces to tracks; returns each face's track index."""
        faces = list(faces)
        pairs: list[tuple[float, int, int]] = []
        for f, face in enumerate(faces):
            for t, track in enumerate(self.tracks):
                score = self._affinity(track, timestamp_ms, face)
                if score is not None:
                    pairs.append((score, f, t))
        assigned: dict[int, int] = {}
        taken: set[int] = set()
        for _, f, t in sorted(pairs, reverse=True):
            if f not in assigned and t not in taken:
                assigned[f] = t
                taken.add(t)
        indexes = []
        for f, face in enumerate(faces):
            if f in assigned:
                track = self.tracks[assigned[f]]
            else:
                track = Track(len(self.tracks))
                self.tracks.append(track)
            track.add(Sighting(timestamp_ms, face), self.keep)
            indexes.append(track.index)
        return indexes

    def _affinity(self, track: Track, now: int, face: Face) -> float | None:
        """Higher is a better match; None when the face cannot belong to the track."""
        gap = now - track.last_ms
        if gap <= 0:
            return None  # one face per track per frame
        distance = _distance(track.descriptor, face.embedding)
        overlap = _iou(track.last.face.box, face.box)
        if gap <= self.max_gap_ms and overlap >= self.min_iou:
            if distance is not None and distance > self.same_person:
                return None  # overlapping, but someone else
            return 1.0 + overlap
        if gap <= self.rejoin_gap_ms and distance is not None and distance <= self.rejoin:
            return 1.0 - distance
        return None


def _iou(a: Box, b: Box) -> float:
    return a.iou(b)


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.linalg.norm(a - b))
