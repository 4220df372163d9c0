"""Use policies, consent records and human review."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.api.payload import encode_base64
from faceledger.api.schemas import PolicyIn
from faceledger.service import consent, crops, erasure, policy, reports, retention, review
from faceledger.service.common import Request

router = APIRouter()


@router.get("/policies", tags=["policies"])
async def list_policies(services: ServicesDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Every policy keys can be bound to: the shipped defaults (or their replacements) first."""
    found = await run_in_threadpool(policy.list_policies, services, Request(actor))
    return [p.to_json() for p in found]


@router.get("/policies/{name}", tags=["policies"])
async def get_policy(name: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    actor.require("collections:read")
    return (await run_in_threadpool(policy.get_policy, services, name)).to_json()


@router.post("/policies", status_code=201, tags=["policies"])
async def create_policy(body: PolicyIn, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    created = await run_in_threadpool(
        lambda: policy.put_policy(services, Request(actor), body.model_dump(), create=True)
    )
    return created.to_json()


@router.put("/policies/{name}", tags=["policies"])
async def replace_policy(
    name: str, body: PolicyIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    definition = {**body.model_dump(), "name": name}
    return (
        await run_in_threadpool(policy.put_policy, services, Request(actor), definition)
    ).to_json()


@router.delete("/policies/{name}", tags=["policies"])
async def delete_policy(name: str, services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    await run_in_threadpool(policy.delete_policy, services, Request(actor), name)
    return {"deleted": name}


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_kind: Literal["user", "external_image", "collection"]
    subject: str | None = Field(None, description="The user id or external image id.")
    consented_by: str = Field(min_length=1, max_length=255)
    document_reference: str = Field(min_length=1, max_length=255)
    scope: str = "enrolment and search in this collection"
    consented_at: dt.datetime | None = None


@router.post("/collections/{collection_id}/consents", status_code=201, tags=["consent"])
async def record_consent(
    collection_id: str, body: ConsentIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    recorded = await run_in_threadpool(
        lambda: consent.record_consent(services, Request(actor), collection_id, **body.model_dump())
    )
    return asdict(recorded)


@router.get("/collections/{collection_id}/consents", tags=["consent"])
async def list_consents(
    collection_id: str,
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(1000, ge=1, le=4096),
    next_token: str | None = None,
) -> dict[str, Any]:
    """Consent records, withdrawn ones too, in the order they were recorded."""
    page = await run_in_threadpool(
        lambda: consent.list_consents(
            services,
            Request(actor),
            collection_id,
            max_results=max_results,
            next_token=next_token,
        )
    )
    return {"consents": [asdict(c) for c in page.items], "next_token": page.next_token}


@router.delete("/consents/{consent_id}", tags=["consent"])
async def withdraw_consent(consent_id: str, services: ServicesDep, actor: ActorDep):
    return asdict(
        await run_in_threadpool(consent.withdraw_consent, services, Request(actor), consent_id)
    )


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None
    external_image_id: str | None = None
    collections: list[str] | None = Field(None, description="Default: every collection.")
    purpose: str | None = Field(None, description="E.g. the request's reference.")


@router.post("/erasure", tags=["erasure"])
async def erase(body: ErasureIn, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    """Erase a data subject everywhere; returns a receipt signed with the ledger's key
    (GET /v1/ledger/public-key verifies it)."""
    return await run_in_threadpool(
        lambda: erasure.erase_subject(
            services,
            Request(actor, body.purpose),
            user_id=body.user_id,
            external_image_id=body.external_image_id,
            collections=body.collections,
        )
    )


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int | None = Field(None, ge=1, le=36500, description="None: the policy decides.")


@router.put("/collections/{collection_id}/retention", tags=["retention"])
async def set_retention(
    collection_id: str, body: RetentionIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    await run_in_threadpool(
        retention.set_collection_retention, services, Request(actor), collection_id, body.days
    )
    return {"collection_id": collection_id, "retention_days": body.days}


@router.post("/retention/run", tags=["retention"])
async def run_retention(services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    """Delete what is due now (the server also runs this periodically)."""
    run = await run_in_threadpool(retention.run_retention, services, Request(actor))
    return {
        "ran_at": run.ran_at,
        "deleted_faces": run.deleted_faces,
        "deleted_review_tasks": run.deleted_review_tasks,
    }


@router.get("/reports/accountability", tags=["reports"])
async def accountability(
    services: ServicesDep,
    actor: ActorDep,
    start: dt.date = Query(alias="from"),
    end: dt.date = Query(alias="to", description="Inclusive."),
    format: Literal["json", "html"] = "json",
):
    """Uses by policy, operation and purpose; results; review outcomes; thresholds; retention
    and erasure; refusals; the ledger's verification; the latest accuracy and fairness audit."""
    begin = dt.datetime.combine(start, dt.time(), dt.UTC)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    report, page = await run_in_threadpool(
        reports.accountability_report, services, Request(actor), begin, finish
    )
    return HTMLResponse(page) if format == "html" else report


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    face_id: str
    decision: Literal["confirm", "reject"]
    reason: str = Field(min_length=3, max_length=2000)


@router.get("/reviews", tags=["review"])
async def list_reviews(
    services: ServicesDep,
    actor: ActorDep,
    status: Literal["open", "closed", "all"] = Query("open"),
    max_results: int = Query(100, ge=1, le=1000),
    next_token: str | None = None,
) -> dict[str, Any]:
    """Review tasks (search results waiting for, or past, human review), oldest first."""
    page = await run_in_threadpool(
        lambda: review.list_tasks(
            services,
            Request(actor),
            status=None if status == "all" else status,
            max_results=max_results,
            next_token=next_token,
        )
    )
    return {"tasks": [asdict(t) for t in page.items], "next_token": page.next_token}


@router.get("/reviews/{task_id}", tags=["review"])
async def show_review(task_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    return asdict(await run_in_threadpool(review.show_task, services, Request(actor), task_id))


@router.get("/reviews/{task_id}/crops", tags=["review"])
async def review_crops(task_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    """What a reviewer looks at: the probe's and each candidate's crop (JPEG, base64), where
    the collection keeps them. Reviewers only, open tasks only, never the requester; every call
    is a ViewFaceCrops event on the ledger."""
    seen = await run_in_threadpool(crops.view_task_crops, services, Request(actor), task_id)
    return {
        "probe": encode_base64(seen.probe) if seen.probe else None,
        "faces": {face_id: encode_base64(jpeg) for face_id, jpeg in seen.faces.items()},
    }


@router.post("/reviews/{task_id}/decisions", tags=["review"])
async def decide(
    task_id: str, body: DecisionIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """Confirm or reject one candidate, with a reason. Two different reviewers, neither the
    requester, must confirm before a candidate is confirmed (under policies that say two)."""
    task = await run_in_threadpool(
        review.decide, services, Request(actor), task_id, body.face_id, body.decision, body.reason
    )
    return asdict(task)
