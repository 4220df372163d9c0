"""``faceledger serve``, ``faceledger keys`` and ``faceledger ledger``."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.common import (
    err_console,
    every_item,
    id_column,
    lazy_module,
    out_console,
    print_json,
    reported_errors,
)
from faceledger.cli.local import DataDirOpt, local_services, settings_for
from faceledger.errors import NotFoundError
from faceledger.governance.signing import public_key_pem

key_cases = lazy_module("faceledger.service.keys")
ledger_cases = lazy_module("faceledger.service.ledger")

keys_app = typer.Typer(help="API keys (stored hashed in the data directory).", no_args_is_help=True)
ledger_app = typer.Typer(help="The audit ledger.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on the port (more than 1 needs a PostgreSQL database).",
        ),
    ] = 1,
) -> None:
    """Run the REST API with uvicorn. The first start creates an admin key in a 0600 file."""
    import uvicorn

    from faceledger.api import create_app

    settings = settings_for(data_dir)
    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=updates)
    if workers > 1 and not settings.resolved_database_url.startswith("postgres"):
        err_console.print(
            "[red]error[/red] INVALID_PARAMETER: --workers needs FACELEDGER_DATABASE_URL="
            "postgresql://...: server processes share one database, and SQLite serves one "
            "(which already uses every core for faces)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    listener = _listen(settings.host, settings.port)  # the banner only once the port is ours
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    err_console.print(
        f"faceledger listening on http://{shown}:{listener.getsockname()[1]} "
        f"(data: {Path(settings.data_dir).resolve()}, docs at /docs)",
        highlight=False,
        soft_wrap=True,
    )
    # X-Forwarded-For is ours to judge (FACELEDGER_TRUSTED_PROXIES), not uvicorn's, which
    # would otherwise believe any local caller.
    if workers == 1:
        config = uvicorn.Config(create_app(settings), log_level="info", proxy_headers=False)
        uvicorn.Server(config).run(sockets=[listener])
        return
    from uvicorn.supervisors import Multiprocess

    # Each worker process reads its settings from the environment, as this one did.
    os.environ["FACELEDGER_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    config = uvicorn.Config(
        "faceledger.api:create_app",
        factory=True,
        workers=workers,
        log_level="info",
        proxy_headers=False,
    )
    Multiprocess(config, sockets=[listener]).run()


def _listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket, or a clear error and exit code 1 (port taken, no such
    address, no permission)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as error:
        reason = error.strerror or str(error)
        err_console.print(
            f"[red]error[/red] CANNOT_LISTEN: cannot listen on {host}:{port}: {reason}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    listener.set_inheritable(True)
    return listener


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help="admin, operator, reviewer or auditor.")],
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
    aws: Annotated[
        bool, typer.Option("--aws", help="An access key id and secret for the Rekognition API.")
    ] = False,
    purpose: Annotated[
        str | None, typer.Option(help="Default purpose its requests are recorded with.")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Use policy (default: $FACELEDGER_DEFAULT_POLICY).")
    ] = None,
    case: Annotated[
        str | None, typer.Option(help="Case or reference number its AWS requests carry.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Issue an API key; its secret is printed once and stored only as a hash (AWS secrets:
    sealed with the server's key)."""
    with local_services(data_dir) as (services, request), reported_errors():
        issued = key_cases.issue_key(
            services, request, role, name, aws=aws, purpose=purpose, policy=policy, case=case
        )
    described = {
        "key_id": issued.key_id,
        "name": issued.name,
        "role": issued.role.value,
        "policy": issued.policy or services.settings.default_policy,
        "aws": aws,
        "purpose": purpose,
        "case": case,
        "token": issued.token,
    }
    if as_json:
        print_json(described)
        return
    out_console.print(
        f"{issued.role.value} key for {issued.name!r}, under use policy {described['policy']}",
        highlight=False,
    )
    if aws:
        labelled = [("access key id", issued.key_id), ("secret access key", issued.token)]
    else:
        labelled = [("key id", issued.key_id), ("token", issued.token)]
    width = max(len(label) for label, _ in labelled)
    for label, value in labelled:
        out_console.print(f"  {label + ':':<{width + 1}} {value}", highlight=False, soft_wrap=True)
    use = (
        "boto3: aws_access_key_id and aws_secret_access_key"
        if aws
        else "send it as 'Authorization: Bearer <token>'"
    )
    err_console.print(
        f"The {labelled[1][0]} is shown only now and cannot be retrieved later: "
        f"store it now ({use})."
    )


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDirOpt = None
) -> None:
    with local_services(data_dir) as (services, request):
        rows = every_item(lambda token: key_cases.keys(services, request, next_token=token))
    listing = [
        {
            "key_id": r.key_id,
            "name": r.name,
            "role": r.role,
            "policy": r.policy or services.settings.default_policy,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]
    if as_json:
        print_json(listing)
        return
    keys = [k["key_id"] for k in listing]
    table = Table(id_column("key id", keys), "role", "policy", "name", "created", "revoked")
    for k in listing:
        table.add_row(
            k["key_id"],
            k["role"],
            k["policy"],
            k["name"],
            k["created_at"][:19],
            (k["revoked_at"] or "")[:19],
        )
    out_console.print(table)


@keys_app.command("policy")
def bind_policy(key_id: str, policy: str, data_dir: DataDirOpt = None) -> None:
    """Move a key to another use policy (recorded on the ledger)."""
    with local_services(data_dir) as (services, request), reported_errors():
        key_cases.bind_policy(services, request, key_id, policy)
    out_console.print(f"{key_id} now acts under policy {policy}")


@keys_app.command("revoke")
def revoke_key(key_id: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        key_cases.revoke(services, request, key_id)
    out_console.print(f"revoked {key_id}")


@ledger_app.command("verify")
def verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="Verify signatures against this PEM public key (kept apart from the server)."
        ),
    ] = None,
    heads: Annotated[
        list[Path] | None,
        typer.Option(
            "--heads",
            help="A file of signed heads kept elsewhere (JSON, one a line, as 'ledger head' "
            "prints); the chain must still hold each. Repeatable.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Recompute the hash chain, check every signature, and check the chain still holds the
    heads in the anchor file and in --heads files; exits 1 naming the first bad event. Writes
    nothing."""
    with local_services(data_dir) as (services, request), reported_errors():
        result = ledger_cases.verify_ledger(services, request, public_key, heads or ())
    if as_json:
        print_json(result)
    elif result.ok:
        out_console.print(
            f"ledger OK: {result.events} events, each signed; {result.signatures} "
            f"checkpoints, the newest at event {result.last_signed_seq}; "
            f"{result.heads_checked} heads held outside the database found in the chain"
        )
    else:
        err_console.print(
            f"[red]ledger BROKEN at event {result.first_bad_seq}[/red]: {result.reason}",
            highlight=False,
        )
    if not result.ok:
        raise typer.Exit(1)


@ledger_app.command("head")
def head(
    out: Annotated[
        Path | None, typer.Option(help="Append the head to this file (a heads file).")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the newest signed head as one JSON object; keep it away from this machine and
    check the ledger against it later with 'ledger verify --heads FILE'."""
    with local_services(data_dir) as (services, request), reported_errors():
        signed = ledger_cases.newest_head(services, request)
        if signed is None:
            raise NotFoundError("the ledger has no signed event yet")
    line = signed.to_json() + "\n"
    if out:
        with reported_errors(), out.open("a") as handle:
            handle.write(line)
        err_console.print(f"appended head {signed.seq} to {out}")
    else:
        sys.stdout.write(line)


@ledger_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option(help="File to write (default stdout).")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write every event as JSON Lines, oldest first, with its chain hashes."""
    with local_services(data_dir) as (services, request):
        handle = out.open("w") if out else sys.stdout
        try:
            count = 0
            for item in ledger_cases.ledger_events(services, request):
                handle.write(json.dumps(item, sort_keys=True) + "\n")
                count += 1
        finally:
            if out:
                handle.close()
    if out:
        err_console.print(f"wrote {count} events to {out}")


@ledger_app.command("public-key")
def public_key(data_dir: DataDirOpt = None) -> None:
    """Print the server's ledger-signing public key (PEM) to give to auditors."""
    with local_services(data_dir) as (services, _):
        sys.stdout.write(public_key_pem(services.ledger.signer.public_key))
