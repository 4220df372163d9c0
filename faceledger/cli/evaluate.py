"""``faceledger eval lfw`` and ``faceledger eval calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from faceledger.cli.common import (
    Backend,
    out_console,
    print_json,
    progress_bar,
    reported_errors,
)
from faceledger.config import get_settings

if TYPE_CHECKING:
    from faceledger.evaluation.embedder import Pipeline

app = typer.Typer(help="Measure the engine on real data.", no_args_is_help=True)

DataOpt = Annotated[
    Path | None,
    typer.Option(
        help="LFW folder (or its parent). Default: $FACELEDGER_EVAL_DATA/lfw, "
        "which is ../shared/data/lfw beside the project."
    ),
]
WorkersOpt = Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Recompute every embedding.")]
FlipOpt = Annotated[bool, typer.Option(help="Average each face's and its mirror's descriptor.")]
FallbackOpt = Annotated[
    bool, typer.Option(help="Run the CNN detector where the detector finds no face.")
]
UpsampleOpt = Annotated[
    int | None, typer.Option(min=0, max=3, help="HOG/CNN doublings (default: from the face size).")
]
DetectorOpt = Annotated[str, typer.Option(help="Face detector: yunet, hog or cnn.")]
RecognizerOpt = Annotated[
    str, typer.Option(help="Descriptor: dlib (the default here), sface or sface-int8.")
]
BackendOpt = Annotated[
    Backend, typer.Option(help="Where the networks run: onnx (fast) or dlib (the reference).")
]


def _pipeline(
    detector: str,
    flip: bool,
    cnn_fallback: bool,
    upsample: int | None,
    jitter: int,
    backend: Backend,
    recognizer: str = "dlib",
) -> Pipeline:
    from faceledger.evaluation.embedder import Pipeline

    return Pipeline(
        detector=detector,
        upsample=upsample,
        cnn_fallback=cnn_fallback,
        flip_fusion=flip,
        jitter=jitter,
        backend=backend.value,
        recognizer=recognizer,
    )


@app.command("lfw")
def lfw_command(
    data: DataOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    folds: Annotated[
        str | None, typer.Option(help="Comma-separated folds 1-10 to run (default all).")
    ] = None,
    workers: WorkersOpt = None,
    no_cache: NoCacheOpt = False,
    flip: FlipOpt = True,
    cnn_fallback: FallbackOpt = True,
    detector: DetectorOpt = "yunet",
    upsample: UpsampleOpt = None,
    jitter: Annotated[
        int, typer.Option(min=0, max=100, help="dlib jitter copies (needs --backend dlib).")
    ] = 0,
    backend: BackendOpt = Backend.onnx,
    recognizer: RecognizerOpt = "dlib",
) -> None:
    """LFW view 2: 10-fold accuracy, ROC AUC, TAR at FAR 1e-3, no-face images, speed."""
    from faceledger.evaluation.verification import evaluate_lfw

    settings = get_settings()
    chosen = None
    if folds:
        try:
            chosen = sorted({int(f) - 1 for f in folds.split(",")})
        except ValueError:
            raise typer.BadParameter("folds are numbers 1-10, e.g. --folds 1,2") from None
        if any(not 0 <= f < 10 for f in chosen):
            raise typer.BadParameter("folds are numbers 1-10")
    with reported_errors(), progress_bar("embedding LFW images") as (set_total, advance):
        report = evaluate_lfw(
            data,
            pipeline=_pipeline(detector, flip, cnn_fallback, upsample, jitter, backend, recognizer),
            folds=chosen,
            cache_dir=None if no_cache else settings.cache_dir,
            workers=workers or settings.workers,
            progress=advance,
            on_total=set_total,
        )
    if as_json:
        print_json(report.to_json())
        return
    table = Table(title="LFW view 2", title_justify="left", show_header=False)
    rows = [
        ("pairs / folds / images", f"{report.pairs} / {report.folds} / {report.images}"),
        (
            "accuracy (mean ± std over folds)",
            f"{report.accuracy_mean:.2%} ± {report.accuracy_std:.2%}",
        ),
        ("accuracy at distance 0.6", f"{report.accuracy_at_default_threshold:.2%}"),
        ("ROC AUC", f"{report.roc_auc:.5f}"),
        ("TAR at FAR 1e-3", f"{report.tar_at_far_1e3:.2%}"),
        (
            f"found by {detector} / CNN fallback",
            f"{report.detected_by[detector]} / {report.detected_by['cnn']}",
        ),
        ("no face found (centre box used)", str(report.no_face_images)),
        ("computed / cached images", f"{report.computed_images} / {report.cached_images}"),
        ("backend", backend.value),
        ("images per second", f"{report.images_per_second:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out_console.print(table)


@app.command("calibrate")
def calibrate_command(
    data: DataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the table (default: the file shipped in the package)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=2, help="Use only the first N images.")] = None,
    workers: WorkersOpt = None,
    no_cache: NoCacheOpt = False,
    recognizer: RecognizerOpt = "dlib",
) -> None:
    """Rebuild a model's similarity -> false match rate table from all LFW cross-identity
    pairs (for SFace, first its similarity scale, matched to dlib's shipped table)."""
    from faceledger.evaluation.calibrate import calibrate_lfw
    from faceledger.evaluation.embedder import Pipeline

    settings = get_settings()
    with reported_errors(), progress_bar("embedding LFW images") as (set_total, advance):
        calibration = calibrate_lfw(
            data,
            pipeline=Pipeline.for_model(recognizer),
            limit=limit,
            cache_dir=None if no_cache else settings.cache_dir,
            workers=workers or settings.workers,
            progress=advance,
            on_total=set_total,
        )
    target = out or _shipped_calibration_path(recognizer)
    calibration.save(target)
    summary = calibration.to_json()
    out_console.print(
        f"wrote {target}: {summary['n_impostor']:,} impostor and "
        f"{summary['n_genuine']:,} genuine pairs"
    )
    for fmr, threshold in summary["thresholds_for_fmr"].items():  # type: ignore[union-attr]
        shown = "not measurable with this many pairs" if threshold is None else f"{threshold}"
        out_console.print(f"  similarity for FMR {fmr}: {shown}")


def _shipped_calibration_path(recognizer: str) -> Path:
    from importlib import resources

    from faceledger.vision.similarity import shipped_calibration_name

    name = shipped_calibration_name(recognizer)
    return Path(str(resources.files("faceledger.vision").joinpath(f"data/{name}")))
