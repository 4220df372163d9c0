"""``faceledger policies``, ``faceledger consent`` and ``faceledger review``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.common import (
    every_item,
    id_column,
    lazy_module,
    out_console,
    print_json,
    reported_errors,
)
from faceledger.cli.local import DataDirOpt, local_services
from faceledger.errors import InputNotFoundError, InvalidParameterError

consent_cases = lazy_module("faceledger.service.consent")
erasure_cases = lazy_module("faceledger.service.erasure")
policy_cases = lazy_module("faceledger.service.policy")
report_cases = lazy_module("faceledger.service.reports")
retention_cases = lazy_module("faceledger.service.retention")
review_cases = lazy_module("faceledger.service.review")

policies_app = typer.Typer(help="Use policies keys are bound to.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent records.", no_args_is_help=True)
review_app = typer.Typer(help="Human review of search results.", no_args_is_help=True)
retention_app = typer.Typer(help="Deleting what is due.", no_args_is_help=True)
report_app = typer.Typer(help="Reports for the public and for oversight.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json")]


@policies_app.command("list")
def list_policies(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        found = policy_cases.list_policies(services, request)
    if as_json:
        print_json([p.to_json() for p in found])
        return
    table = Table("policy", "floor", "max", "legal bases", "needs", "review", "operations")
    for p in found:
        needs = [n for n, on in (("purpose", p.require_purpose), ("case", p.require_case)) if on]
        table.add_row(
            p.name,
            f"{p.min_threshold:g}{' (raised)' if p.raise_to_floor else ''}",
            str(p.max_results),
            ", ".join(b.value for b in p.legal_bases),
            ", ".join(needs + (["consent"] if p.consent_required_to_index else [])),
            f"{p.reviewers_required} people" if p.reviewers_required else "",
            ", ".join(p.operations),
        )
    out_console.print(table)


@policies_app.command("show")
def show_policy(name: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, _), reported_errors():
        print_json(policy_cases.get_policy(services, name).to_json())


@policies_app.command("set")
def set_policy(
    definition: Annotated[Path, typer.Argument(help="A JSON file (see `policies show`).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Create or replace a policy from a JSON file (the change is on the ledger)."""
    with local_services(data_dir) as (services, request), reported_errors():
        try:
            data = json.loads(definition.read_text())
        except FileNotFoundError:
            raise InputNotFoundError(f"no such file: {definition}") from None
        except (OSError, ValueError) as error:
            raise InvalidParameterError(
                f"{definition}: not a readable JSON file: {error}"
            ) from None
        saved = policy_cases.put_policy(services, request, data)
    out_console.print(f"policy {saved.name} saved")


@policies_app.command("delete")
def delete_policy(name: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        policy_cases.delete_policy(services, request, name)
    out_console.print(f"policy {name} deleted")


@consent_app.command("record")
def record_consent(
    collection_id: str,
    consented_by: Annotated[str, typer.Option("--by", help="Who consented (or ran the process).")],
    document: Annotated[str, typer.Option(help="Where the signed release is kept.")],
    user: Annotated[str | None, typer.Option(help="Consent of this user id.")] = None,
    external_image_id: Annotated[str | None, typer.Option(help="Of this image id.")] = None,
    whole_collection: Annotated[
        bool, typer.Option("--collection", help="Enrolment is covered by a process elsewhere.")
    ] = False,
    scope: str = "enrolment and search in this collection",
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Record consent for a user, an external image id, or a whole collection."""
    chosen = [k for k, v in (("user", user), ("external_image", external_image_id)) if v]
    if whole_collection:
        chosen.append("collection")
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --user, --external-image-id, --collection")
    with local_services(data_dir) as (services, request), reported_errors():
        recorded = consent_cases.record_consent(
            services,
            request,
            collection_id,
            subject_kind=chosen[0],
            subject=user or external_image_id,
            consented_by=consented_by,
            document_reference=document,
            scope=scope,
        )
    if as_json:
        print_json(recorded)
    else:
        out_console.print(f"consent {recorded.consent_id} recorded")


@consent_app.command("list")
def list_consents(collection_id: str, as_json: JsonOpt = False, data_dir: DataDirOpt = None):
    with local_services(data_dir) as (services, request), reported_errors():
        found = every_item(
            lambda token: consent_cases.list_consents(
                services, request, collection_id, next_token=token
            )
        )
    if as_json:
        print_json(found)
        return
    ids = [c.consent_id for c in found]
    table = Table(id_column("consent id", ids), "for", "by", "document", "withdrawn")
    for c in found:
        table.add_row(
            c.consent_id,
            f"{c.subject_kind} {c.subject or ''}".strip(),
            c.consented_by,
            c.document_reference,
            c.withdrawn_at.isoformat()[:19] if c.withdrawn_at else "",
        )
    out_console.print(table)


@consent_app.command("withdraw")
def withdraw_consent(consent_id: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        consent_cases.withdraw_consent(services, request, consent_id)
    out_console.print(f"consent {consent_id} withdrawn")


@review_app.command("list")
def list_reviews(
    status: Annotated[str, typer.Option(help="open, closed or all.")] = "open",
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        tasks = every_item(
            lambda token: review_cases.list_tasks(
                services, request, status=None if status == "all" else status, next_token=token
            )
        )
    if as_json:
        print_json(tasks)
        return
    ids = [t.task_id for t in tasks]
    table = Table(
        id_column("task id", ids), "created", "collection", "case", "policy", "candidates", "status"
    )
    for t in tasks:
        table.add_row(
            t.task_id,
            t.created_at.isoformat()[:19],
            t.collection_id,
            t.case or "",
            t.policy,
            str(len(t.candidates)),
            t.status,
        )
    out_console.print(table)


@review_app.command("show")
def show_review(task_id: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        print_json(review_cases.show_task(services, request, task_id))


@review_app.command("decide")
def decide(
    task_id: str,
    face_id: str,
    decision: Annotated[str, typer.Argument(help="confirm or reject")],
    reason: Annotated[str, typer.Option(help="Why (required; on the ledger).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Confirm or reject one candidate of a review task."""
    with local_services(data_dir) as (services, request), reported_errors():
        task = review_cases.decide(services, request, task_id, face_id, decision, reason)
    status = next(c.status for c in task.candidates if c.face_id == face_id)
    out_console.print(f"candidate {face_id}: {status}; task {task.status}")


@retention_app.command("run")
def run_retention(
    now: Annotated[
        dt.datetime | None,
        typer.Option(help="Pretend it is this time (UTC), e.g. for a dry check."),
    ] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete the faces and review records whose retention period is over (on the ledger)."""
    when = now.replace(tzinfo=dt.UTC) if now and now.tzinfo is None else now
    with local_services(data_dir) as (services, request), reported_errors():
        run = retention_cases.run_retention(services, request, when)
    if as_json:
        print_json(run)
    else:
        out_console.print(
            f"deleted {run.face_count} face(s) in {len(run.deleted_faces)} collection(s) and "
            f"{len(run.deleted_review_tasks)} review task(s)"
        )


@retention_app.command("set")
def set_retention(
    collection_id: str,
    days: Annotated[
        int | None, typer.Argument(help="Days after last use; omit to follow the policies.")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        retention_cases.set_collection_retention(services, request, collection_id, days)
    out_console.print(
        f"{collection_id}: faces kept {days} days after last use"
        if days
        else f"{collection_id}: retention follows the enrolling policies"
    )


def erase(
    user: Annotated[str | None, typer.Option(help="Erase this user id.")] = None,
    external_image_id: Annotated[str | None, typer.Option(help="Erase this image id.")] = None,
    collection: Annotated[
        list[str] | None, typer.Option(help="Only these collections (default: all).")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="E.g. the request's reference.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the signed receipt here.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Erase a data subject everywhere; prints (or writes) a signed erasure receipt."""
    with local_services(data_dir, purpose) as (services, request), reported_errors():
        receipt = erasure_cases.erase_subject(
            services,
            request,
            user_id=user,
            external_image_id=external_image_id,
            collections=collection or None,
        )
    if out is not None:
        out.write_text(json.dumps(receipt, indent=2) + "\n")
        removed = receipt["receipt"]["removed"]
        out_console.print(
            f"erased {removed['index_entries']} face(s); signed receipt written to {out}"
        )
    else:
        print_json(receipt)


@report_app.command("accountability")
def accountability(
    start: Annotated[dt.datetime, typer.Option("--from", help="First day (UTC).")],
    end: Annotated[dt.datetime, typer.Option("--to", help="Last day, inclusive (UTC).")],
    out: Annotated[Path, typer.Option(help="Folder for accountability.html and .json.")] = Path(
        "out/accountability"
    ),
    data_dir: DataDirOpt = None,
) -> None:
    """Write the accountability report for a period: HTML (with charts) and JSON."""
    begin = start.replace(tzinfo=dt.UTC)
    finish = end.replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    with local_services(data_dir) as (services, request), reported_errors():
        report, page = report_cases.accountability_report(services, request, begin, finish)
    out.mkdir(parents=True, exist_ok=True)
    (out / "accountability.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "accountability.html").write_text(page)
    out_console.print(
        f"{report['uses']['total']} uses, {report['refused']['total']} refused, review: "
        f"{report['review']['confirmed']} confirmed / {report['review']['rejected']} rejected; "
        f"written to {out}/accountability.html and .json"
    )
