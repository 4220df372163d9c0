"""Stored-video jobs: find the faces in a video, or search a collection with the people in it.

A job is a database row before it is work: starting one checks the policy, records the start on
the ledger and queues it; a bounded pool of workers runs the queue (``video_jobs`` at once).
A worker samples frames at the job's stated rate, detects (YuNet by default; the CNN fallback that
single images get on every faceless image runs on at most one sampled frame a second here, as a
face missed in one frame is usually found in the next) and embeds faces, follows them across
frames (:mod:`faceledger.vision.tracking`) and, for a search, searches the collection with each
person's best faces rather than every frame. Progress is written as it goes; a job can be
cancelled; one left unfinished by a stopped server is started again from the beginning when
the server starts (:func:`resume_unfinished`). The end, with the candidates, is a ledger event,
and under a review policy the candidates open one review task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, select, update

from faceledger.delivery import Delivery
from faceledger.errors import (
    FaceledgerError,
    IdempotentParameterMismatch,
    InvalidParameterError,
    InvalidVideoError,
    NotFoundError,
    RuleViolation,
)
from faceledger.imaging import encode_jpeg
from faceledger.imaging.decode import format_bytes
from faceledger.imaging.video import VideoLimits, frames, probe
from faceledger.service.auth import Actor, Role
from faceledger.service.buckets import UPLOADS, uploads_folder
from faceledger.service.common import (
    Request,
    collection_model,
    decode_token,
    encode_token,
    require_collection,
)
from faceledger.service.context import Services
from faceledger.service.crops import record_crop_view
from faceledger.service.faces import DEFAULT_THRESHOLD, _record_search, _search
from faceledger.service.policy import enforce
from faceledger.service.results import FaceMatch
from faceledger.service.video_analysis import FramePlan, follow_faces, follow_segments
from faceledger.service.workers import EngineSpec, RayWorkers
from faceledger.store.schema import VideoJobRow, VideoResultRow, as_utc, utcnow
from faceledger.vision import Box, Face, FaceEngine
from faceledger.vision.crops import box_crop
from faceledger.vision.tracking import Track, Tracker

log = logging.getLogger("faceledger.video")
DEFAULT_SAMPLE_FPS = 5.0
PROGRESS_EVERY = 10  # frames between progress writes (each also the runner's heartbeat)
# A job whose server has not written progress for this long is taken over by another server.
LEASE = dt.timedelta(seconds=120)
MAX_MATCHES_PER_PERSON = 10
T = TypeVar("T")


@dataclass(frozen=True)
class VideoSource:
    """Where the video is: a resolved local path, and how the caller named it."""

    path: Path
    bucket: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class JobPage:
    job: VideoJobRow
    results: list[dict[str, Any]]
    next_token: str | None


def start_job(
    services: Services,
    request: Request,
    kind: str,
    source: VideoSource,
    *,
    collection_id: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    sample_fps: float | None = DEFAULT_SAMPLE_FPS,
    job_tag: str | None = None,
    client_request_token: str | None = None,
    notify_topic: str | None = None,
) -> str:
    """Queue a job; returns its id. The same ``client_request_token`` with the same request
    returns the first job's id; with a different request it is refused."""
    if kind not in ("detect", "search"):
        raise InvalidParameterError("a video job is 'detect' or 'search'")
    request.actor.require("faces:search" if kind == "search" else "faces:detect")
    if sample_fps is not None and not 0.1 <= sample_fps <= 60:
        raise InvalidParameterError("the sample rate is between 0.1 and 60 frames a second")
    if kind == "search" and not collection_id:
        raise InvalidParameterError("a video search needs a collection")
    parameters = {
        "sample_fps": sample_fps,
        "scan_fps": services.settings.video_scan_fps,
        "threshold_requested": threshold if kind == "search" else None,
        "job_tag": job_tag,
        "role": request.actor.role.value,
        "notify_topic": notify_topic,
    }
    if notify_topic is not None and notify_topic not in services.settings.webhooks:
        raise InvalidParameterError(
            f"the SNS topic {notify_topic[:200]!r} is not mapped to a webhook on this server "
            "(FACELEDGER_SNS_WEBHOOKS); leave NotificationChannel out and poll, or ask the "
            "administrator to map it"
        )
    fingerprint = hashlib.sha256(
        json.dumps(
            [kind, collection_id, source.bucket, source.name, str(source.path), parameters],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    if client_request_token:
        existing = _by_token(services, request.actor.key_id, client_request_token)
        if existing is not None:
            if existing.request_sha256 != fingerprint:
                raise IdempotentParameterMismatch(
                    "this ClientRequestToken was used with a different request"
                )
            return existing.job_id
    operation = "search_video" if kind == "search" else "detect_faces"
    if collection_id is not None:
        with services.db.read() as session:
            require_collection(session, collection_id)
    decision = enforce(
        services,
        request,
        operation,
        collection_id=collection_id,
        threshold=threshold if kind == "search" else None,
    )
    metadata = probe(source.path, _limits(services))  # a bad file is refused now, not later
    parameters["threshold"] = decision.threshold
    job_id = str(uuid.uuid4())
    row = VideoJobRow(
        job_id=job_id,
        kind=kind,
        status="IN_PROGRESS",
        collection_id=collection_id,
        video={"bucket": source.bucket, "name": source.name, "path": str(source.path)},
        parameters=parameters,
        request_sha256=fingerprint,
        client_request_token=client_request_token,
        requester_key_id=request.actor.key_id,
        policy=decision.policy,
        purpose=request.purpose,
        case=request.case,
        legal_basis=decision.legal_basis.value,
        metadata_=_metadata_json(metadata),
        frames_total=_expected_frames(metadata, sample_fps),
        frames_done=0,
        video_ms_done=0,
        cancel_requested=False,
    )
    with services.write_lock, services.db.write() as session:
        session.add(row)
        session.flush()
        services.ledger.append(
            session,
            request.event(
                "StartFaceSearch" if kind == "search" else "StartFaceDetection",
                collection_id=collection_id,
                parameters={
                    "job_id": job_id,
                    "video": source.name or source.path.name,
                    "sample_fps": sample_fps,
                    "threshold": decision.threshold,
                    "policy": decision.policy,
                    "legal_basis": decision.legal_basis.value,
                },
            ),
        )
    runner(services).submit(job_id)
    return job_id


def get_job(
    services: Services,
    request: Request,
    job_id: str,
    *,
    max_results: int = 1000,
    next_token: str | None = None,
    sort_by: str = "TIMESTAMP",
) -> JobPage:
    """The job with one page of its results, by time or by person."""
    request.actor.require("faces:read")
    if not 1 <= max_results <= 1000:
        raise InvalidParameterError("max results is between 1 and 1000")
    if sort_by not in ("TIMESTAMP", "INDEX"):
        raise InvalidParameterError("sort by TIMESTAMP or INDEX")
    after = decode_token(next_token)
    offset = int(after) if after is not None and after.isdigit() else 0
    with services.db.read() as session:
        job = _job(session, request, job_id)
        order = (
            (VideoResultRow.timestamp_ms, VideoResultRow.person_index, VideoResultRow.id)
            if sort_by == "TIMESTAMP"
            else (VideoResultRow.person_index, VideoResultRow.timestamp_ms, VideoResultRow.id)
        )
        rows = list(
            session.scalars(
                select(VideoResultRow)
                .where(VideoResultRow.job_id == job_id)
                .order_by(*order)
                .offset(offset)
                .limit(max_results + 1)
            )
        )
    more = len(rows) > max_results
    results = [
        {"timestamp_ms": r.timestamp_ms, "person_index": r.person_index, **r.body}
        for r in rows[:max_results]
    ]
    return JobPage(job, results, encode_token(str(offset + max_results)) if more else None)


def list_jobs(services: Services, request: Request, max_results: int = 50) -> list[VideoJobRow]:
    """The caller's jobs (every job for the local CLI), newest first."""
    request.actor.require("faces:read")
    query = select(VideoJobRow).order_by(VideoJobRow.created_at.desc()).limit(max_results)
    if request.actor.role is not Role.LOCAL:
        query = query.where(VideoJobRow.requester_key_id == request.actor.key_id)
    with services.db.read() as session:
        return list(session.scalars(query))


def people_seen(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results by person: when each was seen (first, last, sightings) and their candidates."""
    people: dict[int, dict[str, Any]] = {}
    for result in results:
        person = people.setdefault(
            result["person_index"],
            {
                "index": result["person_index"],
                "first_ms": result["timestamp_ms"],
                "last_ms": result["timestamp_ms"],
                "sightings": 0,
                "matches": result.get("matches", []),
            },
        )
        person["last_ms"] = max(person["last_ms"], result["timestamp_ms"])
        person["sightings"] += 1
    return sorted(people.values(), key=lambda p: p["first_ms"])


def person_crops(services: Services, request: Request, job_id: str) -> dict[int, bytes]:
    """A contact sheet: each person's best-seen face, cut again from the job's video (nothing
    of the video is kept), for the key that ran the job. A use of faces: on the ledger,
    counted against the key's crop allowance. Refused when the video is gone (an upload is
    deleted when its job ends) or is no longer the file the job read."""
    request.actor.require("faces:read")
    with services.db.read() as session:
        job = _job(session, request, job_id)
        rows = session.execute(
            select(
                VideoResultRow.timestamp_ms, VideoResultRow.person_index, VideoResultRow.body
            ).where(VideoResultRow.job_id == job_id)
        ).all()
    if job.status != "SUCCEEDED":
        raise RuleViolation("the job has not succeeded: there is no one to show yet")
    path = Path(job.video.get("path") or "")
    if not path.is_file():
        raise NotFoundError(
            "the video is no longer on disk (an upload is deleted when its job ends), so no "
            "face can be shown; faceledger keeps none of its own"
        )
    if job.video_sha256 and _file_sha256(path) != job.video_sha256:
        raise RuleViolation("the video file has changed since the job read it")
    best: dict[int, tuple[float, int, Box]] = {}  # person -> (score, time, box)
    for timestamp, person, body in rows:
        b = body["face"]["box"]
        box = Box(b["left"], b["top"], b["width"], b["height"])
        score = box.area * body["face"].get("confidence", 0.0)
        if person not in best or score > best[person][0]:
            best[person] = (score, timestamp, box)
    wanted: dict[int, list[tuple[int, Box]]] = {}
    for person, (_, timestamp, box) in best.items():
        wanted.setdefault(timestamp, []).append((person, box))
    crops: dict[int, bytes] = {}
    for frame in frames(path, job.parameters.get("sample_fps"), _limits(services)):
        for person, box in wanted.pop(frame.timestamp_ms, []):
            crops[person] = encode_jpeg(box_crop(frame.rgb, box))
        if not wanted:
            break
    people = [f"person:{p}" for p in sorted(crops)]
    record_crop_view(services, request, job.collection_id, people, None, video_job_id=job_id)
    return crops


def cancel_job(services: Services, request: Request, job_id: str) -> None:
    with services.write_lock, services.db.write() as session:
        job = _job(session, request, job_id)
        if job.status == "IN_PROGRESS":
            job.cancel_requested = True


def resume_unfinished(services: Services) -> int:
    """Start again every job a stopped server left IN_PROGRESS (and no other server is
    running); returns how many."""
    with services.db.read() as session:
        ids = [
            job.job_id
            for job in session.scalars(
                select(VideoJobRow).where(VideoJobRow.status == "IN_PROGRESS")
            )
            if job.runner != services.runner_id and claimable(job, services.runner_id)
        ]
    for job_id in ids:
        runner(services).submit(job_id)
    return len(ids)


def claimable(job: VideoJobRow, runner_id: str) -> bool:
    """Whether ``runner_id`` may run the job: no server holds it, it is ours already, its
    server stopped saying it runs it (no heartbeat for LEASE), or its server was a process on
    this host that no longer exists (a server killed and started again resumes at once)."""
    if job.runner in (None, runner_id) or job.heartbeat_at is None:
        return True
    if as_utc(job.heartbeat_at) < utcnow() - LEASE:
        return True
    host, _, pid = job.runner.partition(":")
    return host == socket.gethostname() and not _alive(int(pid.partition(":")[0] or 0))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class JobRunner:
    """A bounded pool running queued jobs; the queue beyond it waits its turn."""

    def __init__(self, services: Services, workers: int) -> None:
        self.services = services
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="video-job")
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self.stopping = threading.Event()  # set at close: jobs stop, still IN_PROGRESS

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._queued:
                return
            self._queued.add(job_id)
        self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        try:
            run_job(self.services, job_id, self.stopping)
        except Exception:  # a job's failure is recorded on it; the pool goes on
            log.exception("video job %s failed", job_id)
        finally:
            with self._lock:
                self._queued.discard(job_id)

    def shutdown(self) -> None:
        """Stop at the next batch of frames; unfinished jobs stay IN_PROGRESS, released, so
        the next server start (or another server) runs them again."""
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        me = self.services.runner_id
        with self.services.write_lock, self.services.db.write() as session:
            session.execute(
                update(VideoJobRow)
                .where(VideoJobRow.runner == me, VideoJobRow.status == "IN_PROGRESS")
                .values(runner=None)
            )


def runner(services: Services) -> JobRunner:
    """This Services' job pool, started on first use and stopped when it closes."""

    def start() -> JobRunner:
        pool = JobRunner(services, services.settings.video_jobs)
        services.closers.append(pool.shutdown)
        return pool

    return services.part("video-jobs", start)


def run_job(services: Services, job_id: str, stopping: threading.Event | None = None) -> None:
    """Do the job's work from the beginning (earlier partial results are dropped)."""
    with services.write_lock, services.db.write() as session:
        job = session.get(VideoJobRow, job_id)
        if job is None or job.status != "IN_PROGRESS" or not claimable(job, services.runner_id):
            return
        session.execute(delete(VideoResultRow).where(VideoResultRow.job_id == job_id))
        job.started_at, job.frames_done, job.video_ms_done = utcnow(), 0, 0
        job.runner, job.heartbeat_at = services.runner_id, utcnow()
        kind, collection_id, parameters = job.kind, job.collection_id, dict(job.parameters)
        path = Path(job.video["path"])
        request = Request(
            Actor(job.requester_key_id, Role(parameters["role"])),
            job.purpose,
            job.case,
            job.legal_basis,
        )
    try:
        sha = _file_sha256(path)
        # A search describes faces with the collection's model; detection with the default.
        model = collection_model(services, collection_id) if collection_id else None
        model = model or services.default_model
        engine = services.engine_for(model)
        tracker, detections, done = Tracker.on_scale_of(engine), [], 0
        followed = _followed(services, model, path, parameters, tracker)
        for frame, faces, people in followed:
            detections += [(frame.timestamp_ms, p, f) for p, f in zip(people, faces, strict=True)]
            done += 1
            if stopping is not None and stopping.is_set():
                return  # the server is closing: the job stays IN_PROGRESS for the next start
            if done % PROGRESS_EVERY == 0 and not _progress(services, job_id, done, frame):
                return  # cancelled
        results, matches = _results(
            services, engine, kind, collection_id, parameters, tracker, detections
        )
        _finish(services, request, job_id, sha, done, results, matches, parameters)
    except FaceledgerError as error:
        _fail(services, request, job_id, error.message)
    except Exception as error:  # never left IN_PROGRESS by a bug: failed, and logged
        log.exception("video job %s failed", job_id)
        reason = f"an internal error ({type(error).__name__}); the server log has the details"
        _fail(services, request, job_id, reason)


def _followed(
    services: Services, model: str, path: Path, parameters: dict[str, Any], tracker: Tracker
) -> Iterator[tuple[Any, list[Face], list[int]]]:
    """The video's faces followed with ``model``'s engine, on this process or on the Ray
    cluster the server is given (``ray_address``), at the rates the job was started with."""
    settings, engine = services.settings, services.engine_for(model)
    metadata = probe(path, _limits(services))
    sample_fps = parameters["sample_fps"]
    # Jobs queued before the scan rate was a parameter looked at every frame whole.
    scan_fps = parameters.get("scan_fps", 0.0)
    plan = FramePlan.of(metadata, sample_fps, settings.video_segment_seconds, scan_fps)
    if not settings.ray_address:
        decoded = frames(
            path, sample_fps, _limits(services), shrink=engine.yunet_scale, metadata=metadata
        )
        return follow_faces(engine, decoded, tracker, plan)
    spec = EngineSpec(model, settings.detector, settings.min_face_px, settings.cnn_fallback)
    return follow_segments(ray_workers(services), spec, path, metadata, sample_fps, tracker, plan)


def ray_workers(services: Services) -> RayWorkers:
    """The server's connection to its Ray cluster, made on first use."""

    def connect() -> RayWorkers:
        workers = RayWorkers(services.settings.ray_address)
        # Closed last (closers run in reverse): after the job pool has stopped its jobs, so a
        # job the server leaves unfinished stays IN_PROGRESS for the next start.
        services.closers.insert(0, workers.close)
        return workers

    return services.part("ray-workers", connect)


def _results(
    services: Services,
    engine: FaceEngine,
    kind: str,
    collection_id: str | None,
    parameters: dict[str, Any],
    tracker: Tracker,
    detections: list,
) -> tuple[list[tuple[int, int, dict]], list[FaceMatch]]:
    """(timestamp, person, body) rows, and for a search every candidate found."""
    per_person: dict[int, list[FaceMatch]] = {}
    if kind == "search":
        assert collection_id is not None
        for track in tracker.tracks:
            per_person[track.index] = search_person(
                services,
                engine,
                collection_id,
                track,
                parameters["threshold"],
                MAX_MATCHES_PER_PERSON,
            )
    rows = []
    for timestamp, person, face in detections:
        body: dict[str, Any] = {"face": _face_json(face)}
        if kind == "search":
            body["matches"] = [match_json(m) for m in per_person.get(person, [])]
        rows.append((timestamp, person, body))
    return rows, best_matches(per_person.values())


def search_person(
    services: Services,
    engine: FaceEngine,
    collection_id: str,
    track: Track,
    threshold: float,
    limit: int,
) -> list[FaceMatch]:
    """A tracked person's candidates: the collection searched with each of their best faces
    (described by ``engine``, the collection's model)."""
    found = []
    for sighting in track.best:
        assert sighting.face.embedding is not None
        embedding = sighting.face.embedding
        found.append(_search(services, engine, collection_id, embedding, threshold, limit))
    return best_matches(found)[:limit]


def best_matches(lists: Iterable[list[FaceMatch]]) -> list[FaceMatch]:
    """Each stored face once, at its highest similarity across the lists, best first."""
    best: dict[str, FaceMatch] = {}
    for matches in lists:
        for m in matches:
            if m.face.face_id not in best or m.similarity > best[m.face.face_id].similarity:
                best[m.face.face_id] = m
    return sorted(best.values(), key=lambda m: -m.similarity)


def _finish(
    services: Services,
    request: Request,
    job_id: str,
    sha: str,
    done: int,
    rows: list[tuple[int, int, dict]],
    matches: list[FaceMatch],
    parameters: dict[str, Any],
) -> None:
    with services.db.read() as session:
        job = session.get(VideoJobRow, job_id)
        assert job is not None
        kind, collection_id, policy = job.kind, job.collection_id, job.policy
    ticket_id = None
    if kind == "search":
        assert collection_id is not None
        decision = enforce(
            services,
            request,
            "search_video",
            collection_id=collection_id,
            threshold=parameters["threshold_requested"],
        )
        _, governance = _record_search(
            services,
            request,
            "GetFaceSearch",
            collection_id,
            (parameters["threshold_requested"], decision),
            MAX_MATCHES_PER_PERSON,
            matches,
            image_sha256=sha,
            job_id=job_id,
        )
        ticket_id = governance.review.task_id if governance.review else None
        status = "unconfirmed" if ticket_id else "candidate"
        for _, _, body in rows:
            for match in body.get("matches", []):
                match["status"] = status
    with services.write_lock, services.db.write() as session:
        job = session.get(VideoJobRow, job_id)
        if job is None or job.status != "IN_PROGRESS" or job.runner != services.runner_id:
            return  # cancelled, or taken over by another server after a lost heartbeat
        session.add_all(
            VideoResultRow(job_id=job_id, timestamp_ms=t, person_index=p, body=b)
            for t, p, b in rows
        )
        job.status, job.finished_at, job.frames_done = "SUCCEEDED", utcnow(), done
        job.video_ms_done = int((job.metadata_ or {}).get("duration_ms", 0))
        job.video_sha256, job.review_task_id = sha, ticket_id
        services.ledger.append(
            session,
            request.event(
                "VideoJobFinished",
                collection_id=collection_id,
                image_sha256=sha,
                parameters={"job_id": job_id, "kind": kind, "policy": policy},
                results={
                    "frames": done,
                    "faces": len(rows),
                    "persons": len({p for _, p, _ in rows}),
                    "candidates": [[m.face.face_id, round(m.similarity, 4)] for m in matches],
                    "review_task_id": ticket_id,
                },
            ),
        )
        finished = job
    _notify(services, finished)


def forget_video_matches(session: Any, face_ids: set[str]) -> int:
    """Inside an erasure: drop the erased faces from every video result's candidates (the
    sightings stay: they are of someone in the video, not of the erased subject's face)."""
    if not face_ids:
        return 0
    removed = 0
    rows = session.scalars(
        select(VideoResultRow).join(VideoJobRow).where(VideoJobRow.kind == "search")
    )
    for row in rows:
        matches = row.body.get("matches", [])
        kept = [m for m in matches if m["face_id"] not in face_ids]
        if len(kept) != len(matches):
            removed += len(matches) - len(kept)
            row.body = {**row.body, "matches": kept}
    return removed


def expire_jobs(session: Any, now: Any, days_for_policy: dict[str, int | None]) -> list[str]:
    """Inside a retention run: delete finished jobs (with their results) older than their
    policy's search-record period; returns their ids."""
    expired = []
    for job in session.scalars(select(VideoJobRow).where(VideoJobRow.status != "IN_PROGRESS")):
        days = days_for_policy.get(job.policy)
        if days is not None and as_utc(job.created_at) + dt.timedelta(days=days) <= now:
            expired.append(job.job_id)
    if expired:
        session.execute(delete(VideoResultRow).where(VideoResultRow.job_id.in_(expired)))
        session.execute(delete(VideoJobRow).where(VideoJobRow.job_id.in_(expired)))
    return expired


def _notify(services: Services, job: VideoJobRow) -> None:
    """The job has ended: Rekognition's completion message to the webhook its SNS topic is
    mapped to, and an uploaded video deleted."""
    _drop_upload(job)
    topic = job.parameters.get("notify_topic")
    hook = services.settings.webhooks.get(topic) if topic else None
    if hook is None:
        return
    message = {
        "JobId": job.job_id,
        "Status": job.status,
        "API": "StartFaceSearch" if job.kind == "search" else "StartFaceDetection",
        "Timestamp": int(utcnow().timestamp() * 1000),
        "Video": {"S3ObjectName": job.video.get("name"), "S3Bucket": job.video.get("bucket")},
    }
    if job.parameters.get("job_tag"):
        message["JobTag"] = job.parameters["job_tag"]
    body = json.dumps({"Type": "Notification", "TopicArn": topic, "Message": json.dumps(message)})
    services.courier.send(Delivery(hook["url"], body.encode(), hook["secret"].encode()))


def _fail(services: Services, request: Request, job_id: str, message: str) -> None:
    with services.write_lock, services.db.write() as session:
        job = session.get(VideoJobRow, job_id)
        if job is None:
            return
        job.status, job.status_message, job.finished_at = "FAILED", message, utcnow()
        services.ledger.append(
            session,
            request.event(
                "VideoJobFinished",
                collection_id=job.collection_id,
                parameters={"job_id": job_id, "kind": job.kind, "policy": job.policy},
                outcome="failed",
                results={"reason": message[:500], "frames": job.frames_done},
            ),
        )
    _notify(services, job)


def _progress(services: Services, job_id: str, done: int, frame: Any) -> bool:
    """Write progress; False when the job was cancelled (and is now marked FAILED)."""
    with services.write_lock, services.db.write() as session:
        job = session.get(VideoJobRow, job_id)
        if job is None or job.runner != services.runner_id:
            return False  # another server has taken the job over
        job.frames_done, job.video_ms_done = done, frame.timestamp_ms
        job.heartbeat_at = utcnow()
        if job.cancel_requested:
            job.status, job.finished_at = "FAILED", utcnow()
            job.status_message = f"cancelled after {done} frames ({frame.timestamp_ms} ms)"
            cancelled = job
        else:
            return True
    _notify(services, cancelled)
    return False


def _job(session: Any, request: Request, job_id: str) -> VideoJobRow:
    job = session.get(VideoJobRow, job_id)
    # Jobs are their requester's (and the local CLI's): another key cannot read or cancel them.
    if job is None or (
        request.actor.role is not Role.LOCAL and job.requester_key_id != request.actor.key_id
    ):
        raise NotFoundError(f"no video job {job_id}")
    return job


def _by_token(services: Services, key_id: str, token: str) -> VideoJobRow | None:
    with services.db.read() as session:
        return session.scalars(
            select(VideoJobRow).where(
                VideoJobRow.requester_key_id == key_id,
                VideoJobRow.client_request_token == token,
            )
        ).first()


def _limits(services: Services) -> VideoLimits:
    s = services.settings
    return VideoLimits(max_bytes=s.max_video_bytes, max_seconds=s.max_video_seconds)


def _metadata_json(metadata: Any) -> dict[str, Any]:
    return {k: getattr(metadata, k) for k in metadata.__dataclass_fields__}


def _expected_frames(metadata: Any, sample_fps: float | None) -> int:
    seconds = metadata.duration_ms / 1000
    if sample_fps is None:
        return metadata.frames or round(seconds * metadata.frame_rate)
    return max(1, int(seconds * sample_fps) + 1)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _face_json(face: Any) -> dict[str, Any]:
    q = face.quality
    return {
        "box": {
            "left": face.box.left,
            "top": face.box.top,
            "width": face.box.width,
            "height": face.box.height,
        },
        "confidence": face.confidence,
        "landmarks": [[p.x, p.y] for p in face.landmarks],
        "pose": {"yaw": q.pose.yaw, "pitch": q.pose.pitch, "roll": q.pose.roll},
        "quality": {"brightness": q.brightness, "sharpness": q.sharpness},
    }


def match_json(match: FaceMatch) -> dict[str, Any]:
    return {
        "face_id": match.face.face_id,
        "external_image_id": match.face.external_image_id,
        "user_id": match.face.user_id,
        "similarity": match.similarity,
        "false_match_rate": match.false_match_rate,
    }


def store_upload(services: Services, request: Request, chunks: Any, filename: str) -> dict:
    """Write an uploaded video to the uploads bucket as it arrives (never more than the video
    limit), check it is a video, and name it; see :data:`faceledger.service.buckets.UPLOADS`.
    ``chunks``: an iterator of bytes."""
    request.actor.require("faces:detect")
    folder = uploads_folder(services)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(filename or "video").name)[-100:] or "video"
    temporary = folder / f".{uuid.uuid4()}.part"
    digest, size, limit = hashlib.sha256(), 0, services.settings.max_video_bytes
    try:
        with temporary.open("wb") as handle:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise InvalidVideoError(
                        "TOO_LARGE",
                        f"the upload is larger than the video limit of {format_bytes(limit)}",
                    )
                digest.update(chunk)
                handle.write(chunk)
        if size == 0:
            raise InvalidVideoError("EMPTY", "the upload is empty (0 bytes)")
        metadata = probe(temporary, _limits(services))
        name = f"{digest.hexdigest()[:16]}-{stem}"
        temporary.replace(folder / name)
    finally:
        temporary.unlink(missing_ok=True)
    return {
        "bucket": UPLOADS,
        "name": name,
        "sha256": digest.hexdigest(),
        "bytes": size,
        "metadata": _metadata_json(metadata),
    }


def _drop_upload(job: VideoJobRow) -> None:
    """An uploaded video is deleted once the job that reads it has ended."""
    if job.video.get("bucket") == UPLOADS:
        Path(job.video["path"]).unlink(missing_ok=True)
