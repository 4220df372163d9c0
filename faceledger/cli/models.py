"""``faceledger models list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.common import out_console, print_json, to_plain
from faceledger.vision.models import REGISTRY
from faceledger.vision.similarity import Calibration

app = typer.Typer(help="The models the engine runs.", no_args_is_help=True)


@app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each model's registry entry, and the similarity calibration in force."""
    calibration = Calibration.load().to_json()
    calibration_summary = {
        k: calibration[k] for k in ("n_impostor", "n_genuine", "thresholds_for_fmr", "description")
    }
    if as_json:
        print_json(
            {"models": [to_plain(s) for s in REGISTRY.values()], "calibration": calibration_summary}
        )
        return
    for spec in REGISTRY.values():
        table = Table(title=f"{spec.name} ({spec.kind})", title_justify="left", show_header=False)
        for key, value in to_plain(spec).items():
            if value not in ("", None, {}):
                table.add_row(key, str(value))
        out_console.print(table)
    out_console.print(
        f"calibration: {calibration_summary['n_impostor']:,} impostor pairs; "
        f"similarity for FMR: {calibration_summary['thresholds_for_fmr']}"
    )
