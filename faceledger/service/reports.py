"""The accountability report as a use case: gathered from the ledger, the review records and
the latest published audit, for admins and auditors; producing it is itself on the ledger."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from faceledger.errors import InvalidParameterError
from faceledger.governance.ledger import EventFilter, export_events
from faceledger.governance.report import build_report
from faceledger.governance.report_html import render_html
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.ledger import verify_ledger
from faceledger.service.policy import list_policies
from faceledger.service.review import task_view
from faceledger.store.schema import ReviewTaskRow, as_utc, utcnow


def accountability_report(
    services: Services, request: Request, start: dt.datetime, end: dt.datetime
) -> tuple[dict[str, Any], str]:
    """The report for events in [start, end): its JSON and its HTML."""
    request.actor.require("reports:read")
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise InvalidParameterError("the period's end must be after its start")
    with services.db.read() as session:
        period = EventFilter(since=start, until=end)
        events = [item["event"] for item in export_events(session, only=period)]
        rows = session.scalars(
            select(ReviewTaskRow)
            .where(ReviewTaskRow.created_at >= start, ReviewTaskRow.created_at < end)
            .order_by(ReviewTaskRow.created_at)
        )
        reviews = [_aware_task(asdict(task_view(session, row))) for row in rows]
    verification = asdict(verify_ledger(services, request))
    report = build_report(
        events,
        period=(start.isoformat(), end.isoformat()),
        policies=[p.to_json() for p in list_policies(services, request)],
        reviews=reviews,
        verification=verification,
        audit=_latest_audit(services),
        generated_at=utcnow().isoformat(timespec="seconds"),
    )
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "AccountabilityReport",
                parameters={"from": start.isoformat(), "to": end.isoformat()},
                results={"uses": report["uses"]["total"], "refused": report["refused"]["total"]},
            ),
        )
    return report, render_html(report)


def _latest_audit(services: Services) -> dict[str, Any] | None:
    path = Path(services.settings.data_dir) / "audit" / "latest-audit.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _aware_task(task: dict[str, Any]) -> dict[str, Any]:
    # SQLite returns naive UTC datetimes; the report subtracts them.
    task["created_at"] = as_utc(task["created_at"])
    for decision in task["decisions"]:
        decision["decided_at"] = as_utc(decision["decided_at"])
    return task
