from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep, read_body
from faceledger.api.routes.docs import image_body
from faceledger.api.schemas import (
    AssociateIn,
    AssociateOut,
    FaceIdsIn,
    FailedFaceOut,
    UserIn,
    UserListOut,
    UserSearchIn,
    UserSearchOut,
)
from faceledger.service import users
from faceledger.service.common import Request

router = APIRouter(prefix="/collections/{collection_id}/users", tags=["users"])


@router.post("", status_code=201)
async def create_user(
    collection_id: str, body: UserIn, services: ServicesDep, actor: ActorDep
) -> dict[str, str]:
    await run_in_threadpool(
        users.create_user, services, body.request(actor), collection_id, body.user_id
    )
    return {"user_id": body.user_id, "status": "CREATED"}


@router.get("", response_model=UserListOut)
async def list_users(
    collection_id: str,
    services: ServicesDep,
    actor: ActorDep,
    max_results: int = Query(500, ge=1, le=500),
    next_token: str | None = None,
):
    page = await run_in_threadpool(
        users.list_users,
        services,
        Request(actor),
        collection_id,
        max_results=max_results,
        next_token=next_token,
    )
    return {"users": page.items, "next_token": page.next_token}


@router.delete("/{user_id}")
async def delete_user(
    collection_id: str,
    user_id: str,
    services: ServicesDep,
    actor: ActorDep,
    purpose: str | None = None,
) -> dict[str, str]:
    await run_in_threadpool(
        users.delete_user, services, Request(actor, purpose), collection_id, user_id
    )
    return {"user_id": user_id, "status": "DELETED"}


@router.post("/{user_id}/faces", response_model=AssociateOut)
async def associate_faces(
    collection_id: str, user_id: str, body: AssociateIn, services: ServicesDep, actor: ActorDep
):
    result = await run_in_threadpool(
        users.associate_faces,
        services,
        body.request(actor),
        collection_id,
        user_id,
        body.face_ids,
        user_match_threshold=body.user_match_threshold,
    )
    return AssociateOut(
        associated_face_ids=result.associated,
        user_status=result.user_status,
        unsuccessful=[FailedFaceOut.model_validate(f) for f in result.unsuccessful],
    )


@router.post("/{user_id}/faces/delete", response_model=AssociateOut)
async def disassociate_faces(
    collection_id: str, user_id: str, body: FaceIdsIn, services: ServicesDep, actor: ActorDep
):
    result = await run_in_threadpool(
        users.disassociate_faces,
        services,
        body.request(actor),
        collection_id,
        user_id,
        body.face_ids,
    )
    return AssociateOut(
        associated_face_ids=result.disassociated,
        user_status=result.user_status,
        unsuccessful=[FailedFaceOut.model_validate(f) for f in result.unsuccessful],
    )


@router.post(
    "/search", response_model=UserSearchOut, openapi_extra=image_body(UserSearchIn, ("image",))
)
async def search_users(
    collection_id: str, http: HttpRequest, services: ServicesDep, actor: ActorDep
):
    """Users like a stored face (``face_id``), a user (``user_id``) or an image's largest face."""
    body, images = await read_body(http, UserSearchIn, ("image",), images_optional=True)
    return await run_in_threadpool(
        users.search_users,
        services,
        body.request(actor),
        collection_id,
        face_id=body.face_id,
        user_id=body.user_id,
        image_bytes=images.get("image"),
        user_match_threshold=body.user_match_threshold,
        max_users=body.max_users,
    )
