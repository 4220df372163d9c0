"""Reviewer pages: the queue, and a task with the probe and each candidate side by side.

Blind review: a reviewer sees no one else's decision on a candidate until they have decided on
it themselves (or it is settled). The key that ran the search sees the task and its outcome,
and is told plainly that it cannot review it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from faceledger.service import crops, review
from faceledger.service.common import Request as UseRequest
from faceledger.service.common import collection_engine
from faceledger.web.console import (
    checked_form,
    data_uri,
    rate_at,
    render,
    see_other,
    services_of,
    signed_in,
    use,
)

router = APIRouter()


@router.get("/review")
async def queue(request: Request, status: str = "open", next_token: str | None = None) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    page = await run_in_threadpool(
        lambda: review.list_tasks(
            services,
            use(session),
            status=None if status == "all" else status,
            max_results=50,
            next_token=next_token or None,
        )
    )
    return render(request, "queue.html", session, tasks=page, status=status)


@router.get("/review/{task_id}")
async def task_page(request: Request, task_id: str) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    me = session.actor

    def load() -> dict:
        task = review.show_task(services, use(session), task_id)
        engine = collection_engine(services, task.collection_id)
        rates = {c.face_id: rate_at(engine, c.similarity) for c in task.candidates}
        own = task.requester_key_id == me.key_id
        mine = {d.face_id: d for d in task.decisions if d.reviewer_key_id == me.key_id}
        seen = None
        if task.status == "open" and not own and me.role.value == "reviewer":
            why = f"reviewing task {task_id}"
            seen = crops.view_task_crops(services, UseRequest(me, why), task_id)
        return {
            "task": task,
            "own": own,
            "mine": mine,
            "rates": rates,
            "probe": data_uri(seen.probe) if seen and seen.probe else None,
            "faces": {k: data_uri(v) for k, v in seen.faces.items()} if seen else {},
        }

    return render(request, "task.html", session, **await run_in_threadpool(load))


@router.post("/review/{task_id}/decide")
async def decide(request: Request, task_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    await run_in_threadpool(
        review.decide,
        services_of(request),
        use(session, form),
        task_id,
        str(form.get("face_id") or ""),
        str(form.get("decision") or ""),
        str(form.get("reason") or ""),
    )
    return see_other(f"/console/review/{task_id}")
