"""Operator pages (and the admin's and auditor's view of collections): collections with their
faces, users, consent and retention; enrolment by upload; the search and compare test pages."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from faceledger.api.payload import decode_base64, encode_base64
from faceledger.errors import InvalidParameterError
from faceledger.service import collections, consent, crops, faces, retention, users
from faceledger.service.common import Request as UseRequest
from faceledger.vision import Box
from faceledger.vision.models import FACE_MODELS
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
PAGE = 48


@router.get("/collections")
async def collection_list(request: Request) -> Response:
    session = await signed_in(request)
    found = await run_in_threadpool(_collections, request, session)
    models = [(m.recognizer, m.summary) for m in FACE_MODELS.values()]
    return render(request, "collections.html", session, collections=found, face_models=models)


def _collections(request: Request, session) -> list:  # type: ignore[no-untyped-def]
    services, me = services_of(request), use(session)
    page = collections.list_collections(services, me, max_results=500)
    return [collections.describe_collection(services, me, c.collection_id) for c in page.items]


@router.post("/collections")
async def collection_create(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    keep = {"on": True, "off": False}.get(str(form.get("keep_face_crops")))
    created = await run_in_threadpool(
        partial(
            collections.create_collection,
            face_model=str(form.get("face_model") or "") or None,
            keep_face_crops=keep,
        ),
        services_of(request),
        use(session, form),
        str(form.get("collection_id") or "").strip(),
    )
    return see_other(f"/console/collections/{created.collection_id}")


@router.get("/collections/{collection_id}")
async def collection_page(
    request: Request, collection_id: str, next_token: str | None = None, show: str = ""
) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    me = use(session)
    role = session.actor.role.value

    def load() -> dict:
        info = collections.describe_collection(services, me, collection_id)
        values: dict = {"info": info, "crop_count": crops.crop_count(services, collection_id)}
        if role == "operator":
            page = faces.list_faces(
                services, me, collection_id, max_results=PAGE, next_token=next_token or None
            )
            values["faces"], values["next_token"] = page.items, page.next_token
            values["users"] = users.list_users(services, me, collection_id).items
            if show and info.keep_face_crops and page.items:
                why = f"looking after collection {collection_id} in the console"
                seen = crops.view_collection_crops(
                    services,
                    UseRequest(session.actor, why),
                    collection_id,
                    [f.face_id for f in page.items],
                )
                values["crops"] = {k: data_uri(v) for k, v in seen.items()}
        if role in ("operator", "admin"):
            values["consents"] = consent.list_consents(services, me, collection_id).items
        values["index_form"] = required_fields(services, me, "index_faces")
        return values

    values = await run_in_threadpool(load)
    return render(request, "collection.html", session, show=bool(show), **values)


@router.post("/collections/{collection_id}/face-crops")
async def collection_crops_switch(request: Request, collection_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    await run_in_threadpool(
        crops.set_keep_face_crops,
        services_of(request),
        use(session, form),
        collection_id,
        form.get("keep_face_crops") == "on",
    )
    return see_other(f"/console/collections/{collection_id}")


@router.post("/collections/{collection_id}/enrol")
async def enrol(request: Request, collection_id: str) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    form = await checked_form(request, session)
    image = await _image(form, "image")
    external_id = str(form.get("external_image_id") or "").strip() or None
    result = await run_in_threadpool(
        partial(
            faces.index_faces,
            external_image_id=external_id,
            max_faces=_int(form.get("max_faces")),
        ),
        services,
        use(session, form),
        collection_id,
        image,
    )
    boxes = [("kept", f.detail.box, "indexed") for f in result.indexed] + [
        ("dropped", u.face.box, ", ".join(u.reasons)) for u in result.unindexed
    ]
    return render(
        request,
        "enrolled.html",
        session,
        collection_id=collection_id,
        result=result,
        picture=_photo(image, result.image_width, result.image_height, boxes),
    )


@router.get("/search")
async def search_page(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    me = use(session)

    def load() -> dict:
        page = collections.list_collections(services, me, max_results=500)
        return {
            "collections": page.items,
            "fields": required_fields(services, me, "search_faces_by_image"),
        }

    return render(request, "search.html", session, **await run_in_threadpool(load))


@router.post("/search")
async def search(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    form = await checked_form(request, session)
    # A second search on the same photo (another face picked) sends the photo back inline.
    inline = str(form.get("image_b64") or "")
    image = decode_base64(inline, "image") if inline else await _image(form, "image")
    collection_id = str(form.get("collection_id") or "")
    threshold = _float(form.get("threshold"), 80.0)
    me = use(session, form)
    result = await run_in_threadpool(
        partial(
            faces.search_faces_by_image,
            threshold=threshold,
            max_faces=_int(form.get("max_faces")) or 10,
            face_box=_box(form),
        ),
        services,
        me,
        collection_id,
        image,
    )
    page = await run_in_threadpool(
        partial(collections.list_collections, max_results=500), services, me
    )
    searched = result.searched_face
    others = [f for f in result.faces_in_image if searched is None or f.box != searched.box]
    boxes = [("other", f.box, f"face {n}") for n, f in enumerate(others, 1)]
    boxes += [("searched", searched.box, "searched face")] if searched else []
    return render(
        request,
        "search.html",
        session,
        collections=page.items,
        fields=required_fields(services, me, "search_faces_by_image"),
        chosen=collection_id,
        result=result,
        picture=_photo(image, result.image_width or 0, result.image_height or 0, boxes),
        others=others,
        image_b64=encode_base64(image),
        stated={k: form.get(k) or "" for k in ("purpose", "case", "legal_basis")},
        threshold=threshold,
    )


# -- helpers -----------------------------------------------------------------------------------


async def _image(form, name: str) -> bytes:  # type: ignore[no-untyped-def]
    part = form.get(name)
    if not isinstance(part, UploadFile):
        raise InvalidParameterError("choose an image file to upload")
    data = await part.read()
    if not data:
        raise InvalidParameterError("the uploaded file is empty")
    return data


def _box(form) -> Box | None:  # type: ignore[no-untyped-def]
    """The face picked on the photo (its box in pixels), when one was."""
    values = [form.get(f"face_{k}") for k in ("left", "top", "width", "height")]
    if not any(values):
        return None
    left, top, width, height = (_float(v, -1.0) for v in values)
    if min(left, top) < 0 or min(width, height) <= 0:
        raise InvalidParameterError("the picked face's box is not a box")
    return Box(left, top, width, height)


def _int(value: object) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidParameterError(f"{text[:20]!r} is not a whole number")
    return int(text)


def _float(value: object, default: float) -> float:
    text = str(value or "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise InvalidParameterError(f"{text[:20]!r} is not a number") from None


MIME = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png", b"GI": "image/gif", b"BM": "image/bmp"}


def _photo(image: bytes, width: int, height: int, boxes: list) -> dict:
    """The uploaded photo, sent back inline (it is not kept), with faces drawn on it."""
    mime = MIME.get(image[:2], "image/webp" if image[8:12] == b"WEBP" else "image/jpeg")
    return {"src": data_uri(image, mime), "width": width, "height": height, "boxes": boxes}


@router.get("/compare")
async def compare_page(request: Request) -> Response:
    session = await signed_in(request)
    fields = required_fields(services_of(request), use(session), "compare_faces")
    return render(request, "compare.html", session, fields=fields)


@router.post("/compare")
async def compare(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    form = await checked_form(request, session)
    source, target = await _image(form, "source"), await _image(form, "target")
    threshold = _float(form.get("threshold"), 80.0)
    me = use(session, form)
    result = await run_in_threadpool(
        partial(faces.compare_faces, threshold=threshold), services, me, source, target
    )
    target_boxes = [("searched", c.face.box, "similar") for c in result.matches]
    target_boxes += [("dropped", c.face.box, "below threshold") for c in result.unmatched]
    return render(
        request,
        "compare.html",
        session,
        fields=required_fields(services, me, "compare_faces"),
        result=result,
        source=_photo(source, *result.source_size, [("searched", result.source_face.box, "")]),
        target=_photo(target, *result.target_size, target_boxes),
    )


@router.post("/collections/{collection_id}/retention")
async def collection_retention(request: Request, collection_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    days = _int(form.get("days"))
    await run_in_threadpool(
        retention.set_collection_retention,
        services_of(request),
        use(session, form),
        collection_id,
        days,
    )
    return see_other(f"/console/collections/{collection_id}")


@router.post("/retention/run")
async def retention_run(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    run = await run_in_threadpool(retention.run_retention, services_of(request), use(session, form))
    collections_now = await run_in_threadpool(_collections, request, session)
    return render(request, "collections.html", session, collections=collections_now, run=run)


@router.post("/collections/{collection_id}/consents")
async def consent_record(request: Request, collection_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    await run_in_threadpool(
        partial(
            consent.record_consent,
            subject_kind=str(form.get("subject_kind") or ""),
            subject=str(form.get("subject") or "").strip() or None,
            consented_by=str(form.get("consented_by") or "").strip(),
            document_reference=str(form.get("document_reference") or "").strip(),
        ),
        services_of(request),
        use(session, form),
        collection_id,
    )
    return see_other(f"/console/collections/{collection_id}")


@router.post("/consents/{consent_id}/withdraw")
async def consent_withdraw(request: Request, consent_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    withdrawn = await run_in_threadpool(
        consent.withdraw_consent, services_of(request), use(session, form), consent_id
    )
    return see_other(f"/console/collections/{withdrawn.collection_id}")
