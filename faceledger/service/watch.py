"""Live watch: a camera or stream watched for a collection's people, under a policy that allows
it (no shipped policy does). Frames are sampled, faces followed across them; each person is
searched with their best faces, and a person with candidates becomes an *alert*: a review task
is opened and the alert is delivered (server-sent events, and a signed webhook when one is
given) as candidates for review, never as an identification. A dropped stream is reconnected
with backoff; a file source is played in real time. Watches live in the server's memory: a
restart ends them (their start and end are on the ledger).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.delivery import Delivery
from faceledger.errors import InvalidParameterError, NotFoundError
from faceledger.service.auth import Role
from faceledger.service.common import Request, collection_engine, require_collection
from faceledger.service.context import Services
from faceledger.service.faces import _record_search
from faceledger.service.policy import enforce
from faceledger.service.video import match_json, search_person
from faceledger.vision import FaceEngine
from faceledger.vision.tracking import Tracker

log = logging.getLogger("faceledger.watch")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "srt://", "udp://")
MAX_ALERTS = 1000  # kept per watch for late subscribers
RESEARCH_MS = 5000  # a person is searched again this often while in view


@dataclass
class Alert:
    seq: int
    time: float
    person: int
    timestamp_ms: int
    candidates: list[dict[str, Any]]
    review_task_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "person": self.person,
            "stream_ms": self.timestamp_ms,
            "candidates": self.candidates,
            "review_task_id": self.review_task_id,
            "note": "candidates for a person to review, never an identification",
        }


@dataclass
class Watch:
    watch_id: str
    collection_id: str
    source: str
    listen: bool
    sample_fps: float
    threshold: float
    requested_threshold: float
    request: Request
    webhook: dict[str, str] | None
    state: str = "connecting"  # connecting | running | reconnecting | ended | stopped | failed
    message: str | None = None
    frames: int = 0
    reconnects: int = 0
    started: float = field(default_factory=time.time)
    last_frame_at: float | None = None
    lag_ms: float = 0.0
    alerts: list[Alert] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def status(self) -> dict[str, Any]:
        elapsed = max(time.time() - self.started, 1e-6)
        return {
            "watch_id": self.watch_id,
            "collection_id": self.collection_id,
            "source": self.source,
            "state": self.state,
            "message": self.message,
            "frames": self.frames,
            "frames_per_second": round(self.frames / elapsed, 2),
            "lag_ms": round(self.lag_ms),
            "reconnects": self.reconnects,
            "alerts": len(self.alerts),
            "sample_fps": self.sample_fps,
            "threshold": self.threshold,
        }

    def alerts_after(self, seq: int, timeout: float) -> list[Alert]:
        """Alerts newer than ``seq``, waiting up to ``timeout`` seconds for one."""
        with self.changed:
            if not any(a.seq > seq for a in self.alerts) and self.state in (
                "connecting",
                "running",
                "reconnecting",
            ):
                self.changed.wait(timeout)
            return [a for a in self.alerts if a.seq > seq]


def _registry(services: Services) -> dict[str, Watch]:
    return services.part("watches", dict)


def start_watch(
    services: Services,
    request: Request,
    collection_id: str,
    source: str,
    *,
    threshold: float = 80.0,
    sample_fps: float = 2.0,
    listen: bool = False,
    webhook: dict[str, str] | None = None,
) -> Watch:
    request.actor.require("faces:search")
    if not 0.1 <= sample_fps <= 30:
        raise InvalidParameterError("the sample rate is between 0.1 and 30 frames a second")
    _check_source(services, request, source)
    if webhook is not None and not (
        str(webhook.get("url", "")).startswith(("http://", "https://")) and webhook.get("secret")
    ):
        raise InvalidParameterError("a webhook is {url: http(s)://..., secret: ...}")
    with services.db.read() as session:
        require_collection(session, collection_id)
    decision = enforce(
        services, request, "watch_stream", collection_id=collection_id, threshold=threshold
    )
    watch = Watch(
        str(uuid.uuid4()),
        collection_id,
        source,
        listen,
        sample_fps,
        decision.threshold if decision.threshold is not None else threshold,
        threshold,
        request,
        webhook,
    )
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "WatchStarted",
                collection_id=collection_id,
                parameters={
                    "watch_id": watch.watch_id,
                    "source": _redacted(source),
                    "sample_fps": sample_fps,
                    "threshold": watch.threshold,
                    "policy": decision.policy,
                    "legal_basis": decision.legal_basis.value,
                },
            ),
        )
    _registry(services)[watch.watch_id] = watch
    threading.Thread(
        target=_run, args=(services, watch), name=f"watch-{watch.watch_id[:8]}", daemon=True
    ).start()
    return watch


def get_watch(services: Services, request: Request, watch_id: str) -> Watch:
    request.actor.require("faces:search")
    watch = _registry(services).get(watch_id)
    if watch is None or (
        request.actor.role is not Role.LOCAL and watch.request.actor.key_id != request.actor.key_id
    ):
        raise NotFoundError(f"no watch {watch_id}")
    return watch


def list_watches(services: Services, request: Request) -> list[Watch]:
    request.actor.require("faces:search")
    return [
        w
        for w in _registry(services).values()
        if request.actor.role is Role.LOCAL or w.request.actor.key_id == request.actor.key_id
    ]


def stop_watch(services: Services, request: Request, watch_id: str) -> Watch:
    watch = get_watch(services, request, watch_id)
    watch.stop_event.set()
    return watch


def stop_all(services: Services) -> None:
    for watch in list(_registry(services).values()):
        watch.stop_event.set()


def _check_source(services: Services, request: Request, source: str) -> None:
    if source.startswith(URL_SCHEMES) or source.startswith("/dev/video"):
        return
    path = Path(source)
    root = services.settings.s3_bucket_dir
    if path.is_absolute() and path.is_file():
        if request.actor.role is Role.LOCAL:  # the CLI reads its own files
            return
        if root is not None and path.resolve().is_relative_to(Path(root).resolve()):
            return
    raise InvalidParameterError(
        "a source is a stream URL (rtsp, http, https, rtmp, srt, udp), a V4L2 device "
        "(/dev/videoN), or a file under the bucket directory"
    )


def _redacted(source: str) -> str:
    """Stream URLs may carry a password (rtsp://user:secret@camera): never on the ledger."""
    if "@" in source and "://" in source:
        scheme, rest = source.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return source


def _frames(watch: Watch) -> Iterator[tuple[int, np.ndarray]]:
    """(stream ms, RGB) at the sample rate; a file is paced to play in real time."""
    import av

    options = {"rtsp_transport": "tcp", "timeout": "5000000"}
    if watch.listen:
        options = {"rtsp_flags": "listen", "listen_timeout": "30"}
    kwargs: dict[str, Any] = {"options": options, "timeout": 10.0}
    if watch.source.startswith("/dev/video"):
        kwargs = {"format": "v4l2"}
    with av.open(watch.source, **kwargs) as container:
        stream = container.streams.video[0]
        is_file = not watch.source.startswith(URL_SCHEMES) and not watch.source.startswith("/dev/")
        begun, step, due = time.monotonic(), 1000.0 / watch.sample_fps, 0.0
        base = stream.time_base
        first_pts = None
        for frame in container.decode(stream):
            if watch.stop_event.is_set():
                return
            if frame.pts is None or base is None:
                continue
            first_pts = frame.pts if first_pts is None else first_pts
            ms = float((frame.pts - first_pts) * base) * 1000
            if is_file:
                time.sleep(max(0.0, begun + ms / 1000 - time.monotonic()))
            watch.lag_ms = max(0.0, (time.monotonic() - begun) * 1000 - ms)
            if ms + 0.5 < due:
                continue
            due = (int(ms / step) + 1) * step
            yield int(ms), frame.to_ndarray(format="rgb24")


def _run(services: Services, watch: Watch) -> None:
    backoff = 1.0
    try:
        while not watch.stop_event.is_set():
            try:
                _follow(services, watch)
                backoff = 1.0
                if not watch.source.startswith(URL_SCHEMES) or watch.stop_event.is_set():
                    _set_state(watch, "ended" if not watch.stop_event.is_set() else "stopped")
                    break
                raise ConnectionError("the stream ended")
            except Exception as error:  # a dropped stream: reconnect with backoff
                if watch.stop_event.is_set():
                    break
                if not watch.source.startswith(URL_SCHEMES):
                    _set_state(watch, "failed", str(error)[:300])
                    break
                watch.reconnects += 1
                _set_state(watch, "reconnecting", f"{error}"[:300])
                watch.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        if watch.state not in ("ended", "failed"):
            _set_state(watch, "stopped")
    finally:
        _record_end(services, watch)


def _follow(services: Services, watch: Watch) -> None:
    engine = collection_engine(services, watch.collection_id)
    tracker = Tracker.on_scale_of(engine)
    searched: dict[int, int] = {}  # person -> stream ms of the last search
    for number, (ms, rgb) in enumerate(_frames(watch)):
        if watch.state != "running":
            _set_state(watch, "running")
        faces = engine.analyze(rgb, cnn_fallback=number % 5 == 0)
        tracker.update(ms, faces)
        watch.frames += 1
        watch.last_frame_at = time.time()
        for track in tracker.tracks:
            if track.last_ms != ms or ms - searched.get(track.index, -RESEARCH_MS) < RESEARCH_MS:
                continue
            searched[track.index] = ms
            _search_person(services, engine, watch, track, ms)


def _search_person(
    services: Services, engine: FaceEngine, watch: Watch, track: Any, ms: int
) -> None:
    matches = search_person(services, engine, watch.collection_id, track, watch.threshold, 5)
    if not matches:
        return
    decision = enforce(
        services,
        watch.request,
        "watch_stream",
        collection_id=watch.collection_id,
        threshold=watch.requested_threshold,
    )
    _, governance = _record_search(
        services,
        watch.request,
        "WatchAlert",
        watch.collection_id,
        (watch.requested_threshold, decision),
        5,
        matches,
        watch_id=watch.watch_id,
        person=track.index,
        stream_ms=ms,
    )
    ticket = governance.review.task_id if governance.review else None
    status = "unconfirmed" if ticket else "candidate"
    candidates = [{**match_json(m), "status": status} for m in matches]
    with watch.changed:
        alert = Alert(len(watch.alerts) + 1, time.time(), track.index, ms, candidates, ticket)
        watch.alerts.append(alert)
        del watch.alerts[:-MAX_ALERTS]
        watch.changed.notify_all()
    if watch.webhook:
        body = json.dumps({"watch_id": watch.watch_id, **alert.as_json()}).encode()
        services.courier.send(
            Delivery(watch.webhook["url"], body, watch.webhook["secret"].encode())
        )


def _set_state(watch: Watch, state: str, message: str | None = None) -> None:
    with watch.changed:
        watch.state, watch.message = state, message
        watch.changed.notify_all()


def _record_end(services: Services, watch: Watch) -> None:
    try:
        with services.write_lock, services.db.write() as session:
            services.ledger.append(
                session,
                watch.request.event(
                    "WatchStopped",
                    collection_id=watch.collection_id,
                    parameters={"watch_id": watch.watch_id, "state": watch.state},
                    results={
                        "frames": watch.frames,
                        "alerts": len(watch.alerts),
                        "reconnects": watch.reconnects,
                    },
                ),
            )
    except Exception:  # the server may be closing; the start is on the ledger regardless
        log.exception("could not record the end of watch %s", watch.watch_id)
