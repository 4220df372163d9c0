"""``faceledger backup`` and ``faceledger restore``."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from faceledger.cli.common import err_console, lazy_module, out_console, reported_errors
from faceledger.cli.local import DataDirOpt, local_services, settings_for

backup_cases = lazy_module("faceledger.service.backup")


def backup(
    destination: Annotated[Path, typer.Argument(help="A new (or empty) folder for the copy.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Copy the data directory while the server keeps running: the database (SQLite's online
    backup), the key files and the ledger's anchored heads, with a manifest of checksums. The
    copy holds every face descriptor and the keys: keep it as private as the data directory."""
    with local_services(data_dir) as (services, request), reported_errors():
        made = backup_cases.backup(services, request, destination)
    total = sum(made.files.values())
    out_console.print(
        f"backup in {made.path}: {len(made.files)} files, {total / 1e6:.1f} MB, the ledger up "
        f"to event {made.ledger_events}",
        highlight=False,
        soft_wrap=True,
    )


def restore(
    backup_dir: Annotated[Path, typer.Argument(help="A folder written by `faceledger backup`.")],
    force: Annotated[
        bool,
        typer.Option(help="Replace an existing data directory (its files are moved aside)."),
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Restore a backup into the data directory (stop its server first), check every file's
    checksum, then verify the whole ledger; exits 1 if the restored ledger does not verify."""
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request

    request = Request(Actor(f"cli:{getpass.getuser()}", Role.LOCAL))
    with reported_errors():
        done = backup_cases.restore(settings_for(data_dir), backup_dir, request, force=force)
    if done.moved_aside is not None:
        err_console.print(
            f"the files it replaced are in {done.moved_aside}", highlight=False, soft_wrap=True
        )
    result = done.verification
    if not result.ok:
        err_console.print(
            f"[red]the restored ledger is BROKEN at event {result.first_bad_seq}[/red]: "
            f"{result.reason}. The files are in {done.data_dir} for inspection; do not serve "
            "from them.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    out_console.print(
        f"restored into {done.data_dir}; ledger OK: {result.events} events, each signed, "
        f"{result.heads_checked} anchored heads found in the chain",
        highlight=False,
        soft_wrap=True,
    )
