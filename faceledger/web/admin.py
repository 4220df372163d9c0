"""Admin pages: keys, policies (with what each floor means), and erasure with a preview."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from faceledger.errors import InvalidParameterError
from faceledger.service import erasure, keys, policy
from faceledger.web.console import (
    checked_form,
    rate_at,
    render,
    see_other,
    services_of,
    signed_in,
    use,
)

router = APIRouter()


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    session = await signed_in(request)
    return render(request, "keys.html", session, **await run_in_threadpool(_keys, request, session))


def _keys(request: Request, session) -> dict:  # type: ignore[no-untyped-def]
    services, me = services_of(request), use(session)
    return {
        "keys": keys.keys(services, me, max_results=1000).items,
        "policies": [p.name for p in policy.list_policies(services, me)],
        "default_policy": services.settings.default_policy,
    }


@router.post("/keys")
async def create_key(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    issued = await run_in_threadpool(
        lambda: keys.issue_key(
            services_of(request),
            use(session, form),
            str(form.get("role") or ""),
            str(form.get("name") or ""),
            policy=str(form.get("policy") or "") or None,
        )
    )
    values = await run_in_threadpool(_keys, request, session)
    return render(request, "keys.html", session, issued=issued, **values)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    await run_in_threadpool(keys.revoke, services_of(request), use(session, form), key_id)
    return see_other("/console/keys")


@router.get("/policies")
async def policies_page(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)

    def load() -> dict:
        found = policy.list_policies(services, use(session))
        floors = {p.name: rate_at(services.engine, p.min_threshold) for p in found}
        return {
            "policies": found,
            "floors": floors,
            "definitions": {p.name: json.dumps(p.to_json(), indent=2) for p in found},
        }

    return render(request, "policies.html", session, **await run_in_threadpool(load))


@router.post("/policies")
async def save_policy(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    try:
        definition = json.loads(str(form.get("definition") or ""))
    except ValueError as error:
        raise InvalidParameterError(f"the policy is not valid JSON: {error}") from None
    if not isinstance(definition, dict):
        raise InvalidParameterError("a policy is a JSON object")
    await run_in_threadpool(
        lambda: policy.put_policy(
            services_of(request), use(session, form), definition, create=form.get("new") == "1"
        )
    )
    return see_other("/console/policies")


@router.get("/erasure")
async def erasure_page(request: Request) -> Response:
    session = await signed_in(request)
    session.actor.require("erasure:run")
    return render(request, "erasure.html", session)


def _subject(form) -> dict:  # type: ignore[no-untyped-def]
    kind = str(form.get("kind") or "")
    subject = str(form.get("subject") or "").strip()
    if kind not in ("user", "external_image"):
        raise InvalidParameterError(
            "choose whether the subject is a user id or an external image id"
        )
    listed = [c.strip() for c in str(form.get("collections") or "").split(",") if c.strip()]
    return {
        "user_id": subject if kind == "user" else None,
        "external_image_id": subject if kind == "external_image" else None,
        "collections": listed or None,
    }


@router.post("/erasure/preview")
async def erasure_preview(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    subject = _subject(form)
    held = await run_in_threadpool(
        lambda: erasure.preview_erasure(services_of(request), use(session, form), **subject)
    )
    return render(request, "erasure.html", session, held=held, form=dict(form))


@router.post("/erasure")
async def erase(request: Request) -> Response:
    session = await signed_in(request)
    form = await checked_form(request, session)
    subject = _subject(form)
    signed = await run_in_threadpool(
        lambda: erasure.erase_subject(services_of(request), use(session, form), **subject)
    )
    return render(
        request,
        "erasure.html",
        session,
        receipt=signed,
        receipt_json=json.dumps(signed, indent=2, sort_keys=True),
        held=None,
    )
