"""``faceledger models list``."""

from __future__ import annotations

import json
from importlib import resources
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
    fairness = _fairness_calibration()
    calibration_summary = {
        k: calibration[k] for k in ("n_impostor", "n_genuine", "thresholds_for_fmr", "description")
    }
    if as_json:
        print_json(
            {
                "models": [to_plain(s) for s in REGISTRY.values()],
                "calibration": calibration_summary,
                "fairness_calibration": fairness,
            }
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
    if fairness:
        for fmr in ("0.001", "0.0001"):
            entry = fairness.get(fmr, {})
            out_console.print(
                f"worst-group threshold for FMR <= {fmr}: similarity "
                f"{entry.get('threshold')} (set by {entry.get('worst_group')}; "
                f"not measurable for {', '.join(entry.get('unmeasurable_groups', []))})"
            )


def _fairness_calibration() -> dict | None:
    """Thresholds from the worst demographic group, shipped by ``make audit``."""
    path = resources.files("faceledger.vision").joinpath("data/fairness_calibration.json")
    return json.loads(path.read_text()) if path.is_file() else None
