"""Stored-video jobs on the native API: start, read (with progress and paginated results),
cancel. The video is a file in a local bucket (``FACELEDGER_S3_BUCKET_DIR``)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.api.schemas import WithPurpose
from faceledger.service import video
from faceledger.service.buckets import resolve_object
from faceledger.service.common import Request

router = APIRouter(tags=["video"])


class VideoObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=1024)


class VideoJobIn(WithPurpose):
    kind: Literal["detect", "search"]
    video: VideoObject
    collection_id: str | None = Field(None, description="The collection a search looks in.")
    threshold: float = Field(80.0, ge=0, le=100, description="Similarity floor for a search.")
    sample_fps: float | None = Field(
        5.0, ge=0.1, le=60, description="Frames per second of video analysed; null: every frame."
    )
    job_tag: str | None = Field(None, max_length=256)
    client_request_token: str | None = Field(
        None, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$", description="Idempotency token."
    )


def job_json(page: video.JobPage) -> dict[str, Any]:
    job = page.job
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "kind": job.kind,
        "status": job.status,
        "status_message": job.status_message,
        "collection_id": job.collection_id,
        "video": {"bucket": job.video.get("bucket"), "name": job.video.get("name")},
        "video_sha256": job.video_sha256,
        "metadata": job.metadata_,
        "sample_fps": job.parameters.get("sample_fps"),
        "scan_fps": job.parameters.get("scan_fps"),
        "threshold": job.parameters.get("threshold"),
        "job_tag": job.parameters.get("job_tag"),
        "policy": job.policy,
        "review_task_id": job.review_task_id,
        "progress": {
            "frames_done": job.frames_done,
            "frames_total": job.frames_total,
            "video_ms_done": job.video_ms_done,
        },
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "results": page.results,
    }
    if page.next_token:
        out["next_token"] = page.next_token
    return out


@router.post(
    "/videos",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
async def upload_video(
    http: HttpRequest,
    services: ServicesDep,
    actor: ActorDep,
    filename: str = Query("video", max_length=255, description="The file's name, for humans."),
) -> dict[str, Any]:
    """Upload a video as the request body (streamed to disk, up to the video size limit); use
    the returned bucket and name in a job. It is deleted when that job ends."""
    loop = asyncio.get_running_loop()
    stream = http.stream().__aiter__()

    def chunks():
        while True:
            try:
                chunk = asyncio.run_coroutine_threadsafe(stream.__anext__(), loop).result()
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    return await run_in_threadpool(video.store_upload, services, Request(actor), chunks(), filename)


@router.post("/video/jobs", status_code=202)
async def start_job(body: VideoJobIn, services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    """Queue a face detection or collection search over a stored video; returns the job id."""

    def start() -> str:
        source = video.VideoSource(
            resolve_object(services, body.video.bucket, body.video.name),
            body.video.bucket,
            body.video.name,
        )
        return video.start_job(
            services,
            body.request(actor),
            body.kind,
            source,
            collection_id=body.collection_id,
            threshold=body.threshold,
            sample_fps=body.sample_fps,
            job_tag=body.job_tag,
            client_request_token=body.client_request_token,
        )

    return {"job_id": await run_in_threadpool(start)}


@router.get("/video/jobs/{job_id}")
async def get_job(
    job_id: str,
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(1000, ge=1, le=1000),
    next_token: str | None = Query(None, max_length=1024),
    sort_by: Literal["TIMESTAMP", "INDEX"] = "TIMESTAMP",
) -> dict[str, Any]:
    """The job's state and progress, and a page of its results."""
    page = await run_in_threadpool(
        video.get_job,
        services,
        Request(actor),
        job_id,
        max_results=max_results,
        next_token=next_token,
        sort_by=sort_by,
    )
    return job_json(page)


@router.post("/video/jobs/{job_id}/cancel", status_code=202)
async def cancel_job(job_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    await run_in_threadpool(video.cancel_job, services, Request(actor), job_id)
    return {"job_id": job_id, "status": "CANCEL_REQUESTED"}
