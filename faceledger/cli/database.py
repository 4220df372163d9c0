"""``faceledger db``: the database under the data directory."""

from __future__ import annotations

from typing import Annotated

import typer

from faceledger.cli.common import (
    err_console,
    lazy_module,
    out_console,
    progress_bar,
    reported_errors,
)
from faceledger.cli.local import DataDirOpt, settings_for

migrate_cases = lazy_module("faceledger.service.migrate")

db_app = typer.Typer(help="The database (SQLite or PostgreSQL).", no_args_is_help=True)


@db_app.command("migrate-to")
def migrate_to(
    url: Annotated[str, typer.Argument(help="An empty PostgreSQL database: postgresql://...")],
    data_dir: DataDirOpt = None,
) -> None:
    """Move this data directory's SQLite database into an empty PostgreSQL database (with the
    pgvector extension available): every face, user, key, policy, consent and review record,
    video job and the ledger with its signatures, then verify the copy. The SQLite file is
    left as it was; stop the server first (its writes wait until the copy is done). Then run
    with FACELEDGER_DATABASE_URL set to the new database, keeping this data directory's keys/
    and ledger/ folders."""
    seen: dict[str, int] = {}
    with reported_errors(), progress_bar("copying rows") as (set_total, advance):

        def progress(table: str, done: int, total: int) -> None:
            if table not in seen:
                set_total(sum(seen.values()) + total)
            advance(done - seen.get(table, 0))
            seen[table] = done

        moved = migrate_cases.migrate_to(settings_for(data_dir), url, progress)
    result = moved.verification
    counts = ", ".join(f"{n} {table}" for table, n in moved.rows.items() if n)
    if not result.ok:
        err_console.print(
            f"[red]the copied ledger does not verify at event {result.first_bad_seq}[/red]: "
            f"{result.reason}. Do not serve from the new database.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    out_console.print(
        f"copied {counts}; ledger OK on the new database: {result.events} events, each signed, "
        f"{result.heads_checked} anchored heads found in the chain. Serve from it with "
        "FACELEDGER_DATABASE_URL set to its URL (and this data directory's keys).",
        highlight=False,
        soft_wrap=True,
    )
