from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep, read_body
from faceledger.api.routes.docs import image_body
from faceledger.api.schemas import (
    CompareIn,
    CompareOut,
    DeleteFacesOut,
    DetectOut,
    FaceIdsIn,
    FaceListOut,
    FailedFaceOut,
    IndexIn,
    IndexOut,
    SearchIn,
    SearchOut,
    WithPurpose,
)
from faceledger.service import faces
from faceledger.service.common import Request

router = APIRouter(tags=["faces"])


@router.post(
    "/collections/{collection_id}/faces",
    response_model=IndexOut,
    openapi_extra=image_body(IndexIn, ("image",)),
)
async def index_faces(
    collection_id: str, http: HttpRequest, services: ServicesDep, actor: ActorDep
):
    """Detect the faces of an image and store them (not the image) in the collection."""
    body, images = await read_body(http, IndexIn, ("image",))
    return await run_in_threadpool(
        faces.index_faces,
        services,
        body.request(actor),
        collection_id,
        images["image"],
        external_image_id=body.external_image_id,
        max_faces=body.max_faces,
        quality_filter=body.quality_filter,
    )


@router.get("/collections/{collection_id}/faces", response_model=FaceListOut)
async def list_faces(
    collection_id: str,
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(1000, ge=1, le=4096),
    next_token: str | None = None,
    user_id: str | None = None,
):
    page = await run_in_threadpool(
        faces.list_faces,
        services,
        Request(actor),
        collection_id,
        max_results=max_results,
        next_token=next_token,
        user_id=user_id,
    )
    return {"faces": page.items, "next_token": page.next_token}


@router.post("/collections/{collection_id}/faces/delete", response_model=DeleteFacesOut)
async def delete_faces(collection_id: str, body: FaceIdsIn, services: ServicesDep, actor: ActorDep):
    deleted, refused = await run_in_threadpool(
        faces.delete_faces, services, body.request(actor), collection_id, body.face_ids
    )
    return DeleteFacesOut(
        deleted_face_ids=deleted,
        unsuccessful=[FailedFaceOut(face_id=f, reasons=[r]) for f, r in refused],
    )


@router.post(
    "/collections/{collection_id}/search",
    response_model=SearchOut,
    openapi_extra=image_body(SearchIn, ("image",)),
)
async def search_faces_by_image(
    collection_id: str, http: HttpRequest, services: ServicesDep, actor: ActorDep
):
    """Faces like the largest face of the image. Matches are candidates for review."""
    body, images = await read_body(http, SearchIn, ("image",))
    return await run_in_threadpool(
        faces.search_faces_by_image,
        services,
        body.request(actor),
        collection_id,
        images["image"],
        threshold=body.threshold,
        max_faces=body.max_faces,
    )


@router.post(
    "/collections/{collection_id}/faces/{face_id}/search",
    response_model=SearchOut,
    openapi_extra=image_body(SearchIn, (), required=False),
)
async def search_faces(
    collection_id: str, face_id: str, http: HttpRequest, services: ServicesDep, actor: ActorDep
):
    """Faces like a stored face; with no body, the defaults (threshold 80)."""
    body, _ = await read_body(http, SearchIn)
    return await run_in_threadpool(
        faces.search_faces,
        services,
        body.request(actor),
        collection_id,
        face_id,
        threshold=body.threshold,
        max_faces=body.max_faces,
    )


@router.post(
    "/compare", response_model=CompareOut, openapi_extra=image_body(CompareIn, ("source", "target"))
)
async def compare_faces(http: HttpRequest, services: ServicesDep, actor: ActorDep):
    """The largest face of ``source`` against every face of ``target``."""
    body, images = await read_body(http, CompareIn, ("source", "target"))
    return await run_in_threadpool(
        faces.compare_faces,
        services,
        body.request(actor),
        images["source"],
        images["target"],
        threshold=body.threshold,
    )


@router.post("/detect", response_model=DetectOut, openapi_extra=image_body(WithPurpose, ("image",)))
async def detect_faces(http: HttpRequest, services: ServicesDep, actor: ActorDep):
    body, images = await read_body(http, WithPurpose, ("image",))
    return await run_in_threadpool(
        faces.detect_faces, services, body.request(actor), images["image"]
    )
