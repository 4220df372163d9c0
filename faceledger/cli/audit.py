"""``faceledger audit run``: the accuracy and fairness audit, as HTML and JSON."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faceledger.cli.common import err_console, out_console, print_json, reported_errors
from faceledger.cli.local import DataDirOpt, settings_for

app = typer.Typer(help="Measure who the system fails.", no_args_is_help=True)


def fairness_calibration_path(recognizer: str = "dlib") -> Path:
    """The worst-group thresholds shipped for a model (dlib's file keeps its old name)."""
    name = "fairness_calibration" + ("" if recognizer == "dlib" else f"-{recognizer}")
    return Path(str(resources.files("faceledger.vision").joinpath(f"data/{name}.json")))


@app.command("run")
def run(
    data: Annotated[
        Path | None,
        typer.Option(help="Evaluation data root (lfw/, utkface/); default ../shared/data."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for audit.html and audit.json.")] = Path(
        "out/audit"
    ),
    quick: Annotated[
        bool,
        typer.Option(
            help="A small run: LFW fold 1's images, 200 UTKFace images, 100 bootstrap draws."
        ),
    ] = False,
    bootstrap: Annotated[int, typer.Option(min=20, max=10_000)] = 500,
    install_calibration: Annotated[
        bool,
        typer.Option(
            help="Also ship the worst-group thresholds with the package (models list shows them)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="Face model to audit: sface-int8, sface or dlib (default: FACELEDGER_FACE_MODEL)."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Verification, differentials per group, identification, failure to acquire, and
    thresholds from the worst group; the latest report is also published to the server."""
    from faceledger.evaluation.audit import AuditOptions, run_audit
    from faceledger.evaluation.report import render_html

    settings = settings_for(data_dir)
    options = AuditOptions(
        data=data or settings.eval_data,
        cache_dir=settings.cache_dir,
        workers=settings.workers,
        bootstrap=100 if quick else bootstrap,
        folds=[0] if quick else None,
        subset=quick,
        utkface_limit=200 if quick else None,
        gallery_sizes=[None] if quick else [100, 300, None],
        face_model=model or settings.face_model,
    )
    with reported_errors(), _progress() as progress:
        report = run_audit(options, progress)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(report, indent=1))
    (out / "audit.html").write_text(render_html(report))
    calibration = {
        "source": "faceledger audit run",
        "created": report["created"],
        "subset": quick,
        "face_model_version": report["face_model_version"],
        **report["worst_group_calibration"],
    }
    (out / "fairness_calibration.json").write_text(json.dumps(calibration, indent=1))
    published = Path(settings.data_dir) / "audit"
    published.mkdir(parents=True, exist_ok=True)
    for name in ("audit.json", "audit.html"):
        shutil.copyfile(out / name, published / f"latest-{name}")
    if install_calibration:
        recognizer = report["pipeline"]["recognizer"]
        fairness_calibration_path(recognizer).write_text(json.dumps(calibration, indent=1) + "\n")
    if as_json:
        print_json(report)
        return
    out_console.print(f"wrote {out / 'audit.html'} and {out / 'audit.json'}")
    for fmr, entry in report["worst_group_calibration"].items():
        out_console.print(
            f"FMR <= {fmr} for every measured group: similarity "
            f"{entry['threshold']} (worst group: {entry['worst_group']})"
        )


@contextmanager
def _progress() -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """A progress bar per stage on stderr: ``progress(label, total)`` returns its advance."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not sys.stderr.isatty(),
    ) as bars:

        def progress(label: str, total: int | None) -> Callable[[int], None]:
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)

        yield progress
