"""The console's frame: sessions, CSRF, rendering, security headers, errors as pages.

Each role's pages live in their own module (operator, review, audit, admin) and use the
helpers here: :func:`signed_in` for the session, :func:`checked_form` for a POST's form (its
CSRF token checked), :func:`render` for a page.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from faceledger import __version__
from faceledger.api.guard import client_address
from faceledger.errors import AuthenticationError, FaceledgerError, PermissionDeniedError
from faceledger.service import sessions
from faceledger.service.auth import PERMISSIONS, Actor
from faceledger.service.common import Request as UseRequest
from faceledger.service.context import Services
from faceledger.service.policy import policy_for
from faceledger.service.sessions import ConsoleSession
from faceledger.vision import FaceEngine

HERE = Path(__file__).parent
COOKIE = "faceledger_session"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

# Pages show faces and keys: never cached, never framed, no script or style from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" even with
    # a form posted to its own server, which the origin check refuses.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
# The accountability and audit reports are whole pages of their own with inline styles and
# no scripts.
REPORT_HEADERS = SECURITY_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'; base-uri 'none'",
}


class SignInNeeded(Exception):
    """No valid session: the browser is sent to the sign-in page."""


def services_of(request: Request) -> Services:
    return request.app.state.services


async def signed_in(request: Request) -> ConsoleSession:
    token = request.cookies.get(COOKIE)
    found = await run_in_threadpool(sessions.current_session, services_of(request), token)
    if found is None:
        raise SignInNeeded
    request.state.actor = found.actor  # for the error handler, which records refusals
    return found


def use(session: ConsoleSession, form: FormData | None = None) -> UseRequest:
    """The use-case request for a console action: who, and what the form states about why."""
    names = ("purpose", "case", "legal_basis")
    fields = {k: (str(form.get(k) or "").strip() or None) if form else None for k in names}
    return UseRequest(session.actor, fields["purpose"], fields["case"], fields["legal_basis"])


async def checked_form(
    request: Request, session: ConsoleSession, max_part_size: int | None = None
) -> FormData:
    """The POST's form, refused unless it carries this session's CSRF token and comes from a
    page of this server (a browser sends Origin with every POST)."""
    _same_origin(request)
    limit = max_part_size or services_of(request).settings.max_request_bytes
    form = await request.form(max_part_size=limit)
    sent = str(form.get("csrf") or "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; reload the page")
    return form


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None:  # "null" too: a sandboxed frame or a page from a file
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin != expected:
            raise PermissionDeniedError(f"a form posted from {origin[:80]} is refused")
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        raise PermissionDeniedError("a form posted from another site is refused")


def render(
    request: Request,
    template: str,
    session: ConsoleSession | None,
    *,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    context: dict[str, Any] = {"request": request, "version": __version__, **values}
    if session is not None:
        context["me"] = session.actor
        context["csrf"] = session.csrf_token
        context["policy"] = policy_for(services_of(request), UseRequest(session.actor))
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


# The permission each governed use needs besides the policy's leave.
NEEDS = {
    "index_faces": "faces:write",
    "search_faces_by_image": "faces:search",
    "search_video": "faces:search",
    "compare_faces": "faces:compare",
}


def required_fields(services: Services, me: UseRequest, operation: str) -> dict[str, Any]:
    """What a form must ask for the caller's policy to allow ``operation``: no three tries to
    learn it. ``allowed``: whether the key's role and policy allow it at all."""
    policy, actor = policy_for(services, me), me.actor
    return {
        "operation": operation,
        "allowed": operation in policy.operations and NEEDS[operation] in PERMISSIONS[actor.role],
        "purpose": policy.require_purpose,
        "case": policy.require_case,
        "legal_basis": policy.require_legal_basis,
        "legal_bases": [b.value for b in policy.legal_bases],
        "floor": policy.min_threshold,
        "raise_to_floor": policy.raise_to_floor,
        "reviewers": policy.reviewers_required,
    }


def rate_at(engine: FaceEngine, similarity: float) -> dict[str, Any]:
    """The false match rate a similarity stands for, from the engine's calibration."""
    rate, bound = engine.calibration.false_match_rate(similarity)
    return {"false_match_rate": rate, "fmr_upper_bound": bound}


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    """An image sent inline in the page: crops are never given a URL of their own."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def age(moment: dt.datetime) -> str:
    seconds = max(0, int((dt.datetime.now(dt.UTC) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


templates.env.globals["age"] = age
templates.env.filters["pct"] = lambda value: f"{value:.2f}"
templates.env.filters["fmr"] = lambda value: f"{value:.1e}" if value else "0"


# -- sign-in -----------------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    session = await signed_in(request)
    return render(request, "home.html", session)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", None)


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    form = await request.form(max_part_size=8192)
    address = client_address(request.scope)
    try:
        signed = await run_in_threadpool(
            sessions.sign_in, services_of(request), str(form.get("api_key") or ""), address
        )
    except AuthenticationError as error:
        await run_in_threadpool(request.app.state.refusal_throttle.charge, address)
        return render(request, "login.html", None, status_code=401, error=error.message)
    response = see_other("/console")
    response.set_cookie(
        COOKIE,
        signed.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await signed_in(request)
    await checked_form(request, session)
    token = request.cookies.get(COOKIE, "")
    await run_in_threadpool(sessions.sign_out, services_of(request), token)
    response = see_other("/console/login")
    response.delete_cookie(COOKIE, path="/")
    return response


def error_page(request: Request, error: FaceledgerError, status: int) -> Response:
    actor: Actor | None = getattr(request.state, "actor", None)
    return render(request, "error.html", None, status_code=status, error=error, me=actor)


def install(app: FastAPI) -> None:
    """Mount the console, its static files, and Swagger UI's files served locally."""
    from faceledger.web import admin, audit, operator, review, video  # routes join the router

    for module in (operator, video, review, audit, admin):
        router.include_router(module.router)
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, _: SignInNeeded) -> Response:
        return see_other("/console/login")

    @app.get("/", include_in_schema=False)
    async def front_door() -> Response:
        """A browser's first visit: the console (whose pages link the API docs)."""
        return see_other("/console")
