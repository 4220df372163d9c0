"""Live watches on the native API: start, list, status, stop, and alerts as server-sent
events. A watch needs a policy that allows ``watch_stream`` (no shipped policy does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.api.schemas import WithPurpose
from faceledger.service import watch as watches
from faceledger.service.common import Request

router = APIRouter(prefix="/watches", tags=["watches"])
HEARTBEAT_SECONDS = 15.0


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, pattern=r"^https?://")
    secret: str = Field(min_length=8, max_length=256, description="Signs each alert (HMAC).")


class WatchIn(WithPurpose):
    collection_id: str
    source: str = Field(
        max_length=2000,
        description="rtsp://, http(s)://, rtmp://, srt:// or udp:// stream; /dev/videoN; or a "
        "file under the bucket directory (played in real time).",
    )
    listen: bool = Field(False, description="Wait for the camera to push (RTSP listen mode).")
    threshold: float = Field(80.0, ge=0, le=100)
    sample_fps: float = Field(2.0, ge=0.1, le=30)
    webhook: Webhook | None = None


@router.post("", status_code=201)
async def start(body: WatchIn, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    watch = await run_in_threadpool(
        watches.start_watch,
        services,
        body.request(actor),
        body.collection_id,
        body.source,
        threshold=body.threshold,
        sample_fps=body.sample_fps,
        listen=body.listen,
        webhook=body.webhook.model_dump() if body.webhook else None,
    )
    return watch.status()


@router.get("")
async def list_all(services: ServicesDep, actor: ActorDep) -> list[dict[str, Any]]:
    return [w.status() for w in watches.list_watches(services, Request(actor))]


@router.get("/{watch_id}")
async def status(watch_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    return watches.get_watch(services, Request(actor), watch_id).status()


@router.delete("/{watch_id}")
async def stop(watch_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    return watches.stop_watch(services, Request(actor), watch_id).status()


@router.get("/{watch_id}/alerts")
async def alerts(watch_id: str, services: ServicesDep, actor: ActorDep) -> StreamingResponse:
    """Server-sent events: every alert so far, then each new one as it happens; a comment
    line every 15 s keeps the connection open; the stream ends when the watch does."""
    watch = watches.get_watch(services, Request(actor), watch_id)

    async def events() -> AsyncIterator[str]:
        seq, quiet = 0, 0.0
        while True:
            fresh = await asyncio.to_thread(watch.alerts_after, seq, 1.0)
            for alert in fresh:
                seq = alert.seq
                yield f"id: {alert.seq}\nevent: alert\ndata: {json.dumps(alert.as_json())}\n\n"
            quiet = 0.0 if fresh else quiet + 1.0
            if watch.state in ("ended", "stopped", "failed") and not fresh:
                yield f"event: end\ndata: {json.dumps(watch.status())}\n\n"
                return
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield ": still watching\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
