"""The ``faceledger`` command."""

from __future__ import annotations

import typer

from faceledger.cli import evaluate, faces, models

app = typer.Typer(
    help="faceledger: self-hosted face recognition that can be held to account.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(faces.detect)
app.command()(faces.compare)
app.add_typer(evaluate.app, name="eval")
app.add_typer(models.app, name="models")


def run() -> None:
    app()
