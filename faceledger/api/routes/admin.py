from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.api.schemas import (
    IssuedKeyOut,
    KeyIn,
    KeyListOut,
    KeyOut,
    KeyPolicyIn,
    SignedHeadOut,
    VerificationOut,
)
from faceledger.errors import NotFoundError
from faceledger.governance.ledger import EventFilter
from faceledger.governance.signing import public_key_pem
from faceledger.service import keys, ledger
from faceledger.service.common import Request

router = APIRouter()


@router.post("/keys", status_code=201, response_model=IssuedKeyOut, tags=["keys"])
async def create_key(body: KeyIn, services: ServicesDep, actor: ActorDep):
    issued = await run_in_threadpool(
        lambda: keys.issue_key(
            services,
            Request(actor),
            body.role,
            body.name,
            aws=body.aws,
            purpose=body.purpose,
            policy=body.policy,
            case=body.case,
        )
    )
    return IssuedKeyOut(
        key_id=issued.key_id,
        name=issued.name,
        role=issued.role.value,
        policy=issued.policy or services.settings.default_policy,
        aws=body.aws,
        purpose=body.purpose,
        case=body.case,
        token=issued.token,
    )


@router.get("/keys", response_model=KeyListOut, tags=["keys"])
async def list_keys(
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(1000, ge=1, le=4096),
    next_token: str | None = None,
):
    """Keys, revoked ones too, oldest first; never their secrets."""
    page = await run_in_threadpool(
        lambda: keys.keys(services, Request(actor), max_results=max_results, next_token=next_token)
    )
    listed = [
        KeyOut(
            key_id=r.key_id,
            name=r.name,
            role=r.role,
            policy=r.policy or services.settings.default_policy,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        for r in page.items
    ]
    return KeyListOut(keys=listed, next_token=page.next_token)


@router.put("/keys/{key_id}/policy", tags=["keys"])
async def bind_key_policy(
    key_id: str, body: KeyPolicyIn, services: ServicesDep, actor: ActorDep
) -> dict[str, str]:
    """Move a key to another use policy (recorded on the ledger)."""
    await run_in_threadpool(keys.bind_policy, services, Request(actor), key_id, body.policy)
    return {"key_id": key_id, "policy": body.policy}


@router.delete("/keys/{key_id}", tags=["keys"])
async def revoke_key(key_id: str, services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    await run_in_threadpool(keys.revoke, services, Request(actor), key_id)
    return {"key_id": key_id, "status": "REVOKED"}


@router.get("/ledger/verify", response_model=VerificationOut, tags=["ledger"])
async def verify_ledger(services: ServicesDep, actor: ActorDep):
    return await run_in_threadpool(ledger.verify_ledger, services, Request(actor))


@router.get("/ledger/head", response_model=SignedHeadOut, tags=["ledger"])
async def ledger_head(services: ServicesDep, actor: ActorDep):
    """The newest event as a signed head. Keep copies elsewhere: `faceledger ledger verify
    --heads FILE` later fails if the chain no longer holds them."""
    head = await run_in_threadpool(ledger.newest_head, services, Request(actor))
    if head is None:
        raise NotFoundError("the ledger has no signed event yet")
    return asdict(head)


@router.get("/ledger/public-key", tags=["ledger"])
async def ledger_public_key(services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    """The key that signs the ledger's head and erasure receipts (publish it)."""
    Request(actor).actor.require("ledger:read")
    signer = services.ledger.signer
    return {"key_id": signer.key_id, "pem": public_key_pem(signer.public_key)}


@router.get("/ledger/events", tags=["ledger"])
async def ledger_events(
    services: ServicesDep,
    actor: ActorDep,
    after: int = Query(0, ge=0, le=2**62, description="Events with a larger sequence number."),
    limit: int = Query(1000, ge=1, le=10_000, description="Events examined per page."),
    operation: str | None = Query(None, max_length=64, description="E.g. SearchFacesByImage."),
    actor_key_id: str | None = Query(None, max_length=64, description="The acting key's id."),
    collection_id: str | None = Query(None, max_length=255),
    outcome: Literal["ok", "refused", "failed"] | None = None,
    since: dt.datetime | None = Query(
        None, alias="from", description="Inclusive; a date or a time (UTC when no zone given)."
    ),
    until: dt.datetime | None = Query(None, alias="to", description="Exclusive."),
) -> dict[str, Any]:
    """Events oldest first with their chain fields, filtered by the parameters given. Pass
    ``next_after`` back as ``after`` for the next page; it is null at the end."""
    only = EventFilter(operation, actor_key_id, collection_id, outcome, since, until)
    events, next_after = await run_in_threadpool(
        ledger.find_events, services, Request(actor), after, limit, only
    )
    return {"events": events, "next_after": next_after}
