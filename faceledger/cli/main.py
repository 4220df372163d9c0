"""The ``faceledger`` command."""

from __future__ import annotations

import typer

from faceledger.cli import (
    audit,
    backup,
    collections,
    database,
    evaluate,
    faces,
    governance,
    models,
    server,
    video,
)

app = typer.Typer(
    help="faceledger: self-hosted face recognition that can be held to account.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(faces.detect)
app.command()(faces.compare)
app.command()(server.serve)
app.command()(collections.index)
app.command()(collections.search)
app.add_typer(collections.collections_app, name="collections")
app.add_typer(collections.users_app, name="users")
app.add_typer(server.keys_app, name="keys")
app.add_typer(server.ledger_app, name="ledger")
app.add_typer(evaluate.app, name="eval")
app.add_typer(audit.app, name="audit")
app.add_typer(models.app, name="models")
app.add_typer(governance.policies_app, name="policies")
app.add_typer(governance.consent_app, name="consent")
app.add_typer(governance.review_app, name="review")
app.add_typer(governance.retention_app, name="retention")
app.add_typer(governance.report_app, name="report")
app.command()(governance.erase)
app.add_typer(video.app, name="video")
app.command()(video.watch)
app.command()(backup.backup)
app.command()(backup.restore)
app.add_typer(database.db_app, name="db")


def run() -> None:
    app()


if __name__ == "__main__":
    run()
