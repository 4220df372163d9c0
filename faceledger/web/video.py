"""Operator pages for stored video: upload and start a job, follow its progress, see who was
seen when and the collection's candidates for each person."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from faceledger.errors import InvalidParameterError, NotFoundError, RuleViolation
from faceledger.service import collections, video
from faceledger.service.buckets import resolve_object
from faceledger.web.console import (
    checked_form,
    data_uri,
    render,
    required_fields,
    see_other,
    services_of,
    signed_in,
    use,
)

router = APIRouter()
CHUNK = 1 << 20


@router.get("/video")
async def jobs_page(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    me = use(session)

    def load() -> dict:
        return {
            "jobs": video.list_jobs(services, me),
            "collections": collections.list_collections(services, me, max_results=500).items,
            "fields": required_fields(services, me, "search_video"),
        }

    return render(request, "video.html", session, **await run_in_threadpool(load))


@router.post("/video")
async def start(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    form = await checked_form(request, session, max_part_size=services.settings.max_video_bytes)
    upload = form.get("video")
    if not isinstance(upload, UploadFile):
        raise InvalidParameterError("choose a video file to upload")
    kind = str(form.get("kind") or "detect")
    me = use(session, form)
    sample = str(form.get("sample_fps") or "").strip()

    def chunks():  # the form's file is spooled to disk already; copied on in chunks
        while chunk := upload.file.read(CHUNK):
            yield chunk

    def run() -> str:
        stored = video.store_upload(services, me, chunks(), upload.filename or "video")
        source = video.VideoSource(
            resolve_object(services, stored["bucket"], stored["name"]),
            stored["bucket"],
            stored["name"],
        )
        return video.start_job(
            services,
            me,
            kind,
            source,
            collection_id=(str(form.get("collection_id") or "") or None)
            if kind == "search"
            else None,
            threshold=float(str(form.get("threshold") or "80")),
            sample_fps=None if sample == "every" else float(sample or video.DEFAULT_SAMPLE_FPS),
        )

    try:
        job_id = await run_in_threadpool(run)
    except ValueError:
        raise InvalidParameterError("the threshold and sample rate are numbers") from None
    return see_other(f"/console/video/{job_id}")


@router.get("/video/{job_id}")
async def job_page(request: Request, job_id: str, faces: str = "") -> Response:
    session = await signed_in(request)
    services, me = services_of(request), use(session)
    page = await run_in_threadpool(
        lambda: video.get_job(services, me, job_id, max_results=1000, sort_by="INDEX")
    )
    crops, unavailable = {}, None
    if faces:  # the contact sheet: a use of faces, on the ledger
        try:
            seen = await run_in_threadpool(video.person_crops, services, me, job_id)
            crops = {person: data_uri(jpeg) for person, jpeg in seen.items()}
        except (NotFoundError, RuleViolation) as error:
            unavailable = error.message
    return render(
        request,
        "video_job.html",
        session,
        job=page.job,
        people=video.people_seen(page.results),
        more=page.next_token is not None,
        crops=crops,
        unavailable=unavailable,
        asked=bool(faces),
    )


@router.post("/video/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    await run_in_threadpool(video.cancel_job, services_of(request), use(session, form), job_id)
    return see_other(f"/console/video/{job_id}")
