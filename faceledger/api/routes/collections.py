from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.api.payload import encode_base64
from faceledger.api.schemas import (
    CollectionIn,
    CollectionListOut,
    CollectionOut,
    CropsIn,
    KeepCropsIn,
)
from faceledger.service import collections, crops
from faceledger.service.common import Request

router = APIRouter(prefix="/collections", tags=["collections"])


@router.post("", status_code=201, response_model=CollectionOut)
async def create_collection(body: CollectionIn, services: ServicesDep, actor: ActorDep):
    return await run_in_threadpool(
        partial(
            collections.create_collection,
            face_model=body.face_model,
            keep_face_crops=body.keep_face_crops,
        ),
        services,
        body.request(actor),
        body.collection_id,
    )


@router.get("", response_model=CollectionListOut)
async def list_collections(
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(1000, ge=1, le=4096),
    next_token: str | None = None,
):
    page = await run_in_threadpool(
        collections.list_collections,
        services,
        Request(actor),
        max_results=max_results,
        next_token=next_token,
    )
    return CollectionListOut(
        collection_ids=[c.collection_id for c in page.items],
        face_model_versions=[c.face_model_version for c in page.items],
        next_token=page.next_token,
    )


@router.get("/{collection_id}", response_model=CollectionOut)
async def describe_collection(collection_id: str, services: ServicesDep, actor: ActorDep):
    return await run_in_threadpool(
        collections.describe_collection, services, Request(actor), collection_id
    )


@router.delete("/{collection_id}")
async def delete_collection(
    collection_id: str, services: ServicesDep, actor: ActorDep, purpose: str | None = None
) -> dict[str, int]:
    faces = await run_in_threadpool(
        collections.delete_collection, services, Request(actor, purpose), collection_id
    )
    return {"deleted_faces": faces}


@router.put("/{collection_id}/face-crops")
async def keep_face_crops(
    collection_id: str, body: KeepCropsIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """Switch the collection's review crops on (for faces indexed from now) or off (every crop
    it holds is deleted now)."""
    deleted = await run_in_threadpool(
        crops.set_keep_face_crops,
        services,
        body.request(actor),
        collection_id,
        body.keep_face_crops,
    )
    return {"keep_face_crops": body.keep_face_crops, "deleted_crops": deleted}


@router.post("/{collection_id}/faces/crops")
async def view_face_crops(
    collection_id: str, body: CropsIn, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """The review crops (JPEG, base64) of faces in the collection; faces without one are left
    out. Operators only; every call is a ViewFaceCrops event on the ledger."""
    seen = await run_in_threadpool(
        crops.view_collection_crops, services, body.request(actor), collection_id, body.face_ids
    )
    return {"crops": {face_id: encode_base64(jpeg) for face_id, jpeg in seen.items()}}
