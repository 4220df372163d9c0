"""Auditor pages (admins see them too): the ledger browser with filters, an event's detail,
verification with the signed head, export, and the reports as pages."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from faceledger.errors import InvalidParameterError, NotFoundError
from faceledger.governance.ledger import EventFilter
from faceledger.service import evaluation, ledger, reports
from faceledger.web.console import (
    REPORT_HEADERS,
    SECURITY_HEADERS,
    checked_form,
    render,
    services_of,
    signed_in,
    use,
)

router = APIRouter()
PAGE = 50
OUTCOMES = ("ok", "refused", "failed")


def _filter(request: Request) -> tuple[EventFilter, dict[str, str]]:
    """The ledger filter the query asks for, and the query's values to refill the form."""
    given = {k: request.query_params.get(k, "").strip() for k in _FIELDS}
    outcome = given["outcome"] or None
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidParameterError("outcome is ok, refused or failed")
    only = EventFilter(
        operation=given["operation"][:64] or None,
        actor_key_id=given["actor"][:64] or None,
        collection_id=given["collection"][:255] or None,
        outcome=outcome,
        since=_time(given["from"], "from"),
        until=_time(given["to"], "to"),
    )
    return only, given


_FIELDS = ("operation", "actor", "collection", "outcome", "from", "to")


def _time(text: str, name: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(f"{name}: a date or time like 2026-11-24T09:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@router.get("/ledger")
async def ledger_page(request: Request, after: int = 0) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    only, given = _filter(request)
    me = use(session)

    def load() -> dict:
        head = ledger.newest_head(services, me)
        start = after if after >= 0 else max(0, (head.seq if head else 0) - PAGE)
        events, next_after = ledger.find_events(services, me, start, PAGE, only)
        return {"events": events, "next_after": next_after, "head": head}

    values = await run_in_threadpool(load)
    query = "&".join(f"{k}={v}" for k, v in given.items() if v)
    return render(request, "ledger.html", session, given=given, query=query, **values)


@router.get("/ledger/export")
async def export(request: Request) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    only, _ = _filter(request)
    me = use(session)
    ledger.newest_head(services, me)  # refused here, before the download starts, if not allowed

    def lines() -> Iterator[str]:
        for item in ledger.ledger_events(services, me, 0, None, only):
            yield json.dumps(item, sort_keys=True) + "\n"

    headers = SECURITY_HEADERS | {
        "Content-Disposition": 'attachment; filename="faceledger-ledger.jsonl"'
    }
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


@router.get("/ledger/{seq}")
async def event_page(request: Request, seq: int) -> Response:
    session = await signed_in(request)
    services = services_of(request)
    me = use(session)
    found, _ = await run_in_threadpool(
        ledger.find_events, services, me, max(0, seq - 1), 1, EventFilter()
    )
    if not found or found[0]["event"].get("seq", seq) != seq:
        raise NotFoundError(f"no ledger event {seq}")
    item = found[0]
    return render(
        request,
        "event.html",
        session,
        seq=seq,
        item=item,
        body=json.dumps(item["event"], indent=2, sort_keys=True),
    )


@router.post("/ledger/verify")
async def verify(request: Request) -> Response:
    session = await signed_in(request)
    await checked_form(request, session)
    services = services_of(request)
    me = use(session)

    def run() -> dict:
        return {
            "result": ledger.verify_ledger(services, me),
            "head": ledger.newest_head(services, me),
        }

    return render(request, "verified.html", session, **await run_in_threadpool(run))


@router.get("/reports")
async def reports_page(request: Request) -> Response:
    session = await signed_in(request)
    session.actor.require("reports:read")
    today = dt.datetime.now(dt.UTC).date()
    return render(
        request,
        "reports.html",
        session,
        start=(today - dt.timedelta(days=30)).isoformat(),
        end=(today + dt.timedelta(days=1)).isoformat(),
    )


@router.get("/reports/accountability")
async def accountability(request: Request) -> Response:
    session = await signed_in(request)
    start = _time(request.query_params.get("from", ""), "from")
    end = _time(request.query_params.get("to", ""), "to")
    if start is None or end is None:
        raise InvalidParameterError("give the period: from and to")
    _, page = await run_in_threadpool(
        reports.accountability_report, services_of(request), use(session), start, end
    )
    return HTMLResponse(page, headers=REPORT_HEADERS)


@router.get("/reports/audit")
async def audit(request: Request) -> Response:
    session = await signed_in(request)
    page = await run_in_threadpool(
        evaluation.latest_report, services_of(request), use(session), "html"
    )
    return HTMLResponse(page, headers=REPORT_HEADERS)
