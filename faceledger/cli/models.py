"""``faceledger models list``, ``build`` and ``int8-ranges``."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.audit import fairness_calibration_path
from faceledger.cli.common import (
    lazy_module,
    out_console,
    print_json,
    progress_bar,
    reported_errors,
    to_plain,
)
from faceledger.config import get_settings
from faceledger.vision.models import FACE_MODELS, REGISTRY, face_model
from faceledger.vision.similarity import Calibration

runtime = lazy_module("faceledger.vision.dnn.runtime")  # ONNX and ONNX Runtime: on first use

app = typer.Typer(help="The models the engine runs.", no_args_is_help=True)


@app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each model's registry entry, the face models collections can be bound to, and the
    default model's similarity calibration and worst-group thresholds."""
    default = face_model(get_settings().face_model)
    face_models = []
    for model in FACE_MODELS.values():
        table = Calibration.load(recognizer=model.recognizer).to_json()
        face_models.append(
            {
                "version": model.version,
                "summary": model.summary,
                "default": model is default,
                "calibration": {
                    k: table[k]
                    for k in ("n_impostor", "n_genuine", "thresholds_for_fmr", "description")
                },
                "fairness_calibration": _fairness_calibration(model.recognizer),
            }
        )
    chosen = next(m for m in face_models if m["default"])
    calibration_summary, fairness = chosen["calibration"], chosen["fairness_calibration"]
    cache = get_settings().cache_dir
    graphs = {
        name: {
            "path": str(runtime.graph_path(name, cache)),
            "built": runtime.graph_path(name, cache).is_file(),
        }
        for name in runtime.BUILDABLE
    }
    if as_json:
        print_json(
            {
                "models": [{**to_plain(s), "onnx": graphs.get(s.name)} for s in REGISTRY.values()],
                "face_models": face_models,
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
        if spec.name in graphs:
            graph = graphs[spec.name]
            state = "built" if graph["built"] else "built on first use"
            table.add_row("onnx graph", f"{graph['path']} ({state})")
        out_console.print(table)
    for model in face_models:
        marker = " (default for new collections)" if model["default"] else ""
        out_console.print(f"face model {model['version']}{marker}: {model['summary']}")
    out_console.print(
        f"calibration of {default.version}: {calibration_summary['n_impostor']:,} impostor pairs; "
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


@app.command("build")
def build_models(
    force: Annotated[bool, typer.Option(help="Rebuild graphs that are already cached.")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build the ONNX graphs from the installed weight files (done on first use anyway)."""
    cache = get_settings().cache_dir
    built = []
    with reported_errors():
        for name in runtime.BUILDABLE:
            started = time.perf_counter()
            path = runtime.build_graph(name, cache, force=force)
            seconds = round(time.perf_counter() - started, 2)
            built.append(
                {"model": name, "path": str(path), "bytes": path.stat().st_size, "seconds": seconds}
            )
    if as_json:
        print_json({"graphs": built})
        return
    for entry in built:
        out_console.print(
            f"{entry['model']}: {entry['path']} ({entry['bytes']:,} bytes, {entry['seconds']} s)",
            highlight=False,
            soft_wrap=True,
        )


@app.command("int8-ranges")
def int8_ranges(
    data: Annotated[
        Path | None,
        typer.Option(help="UTKFace folder. Default: $FACELEDGER_EVAL_DATA/utkface."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the ranges (default: the file shipped in the package)."),
    ] = None,
    count: Annotated[int, typer.Option(min=10, max=2000, help="Photos to measure on.")] = 200,
) -> None:
    """Measure the activation ranges SFace's int8 graph is quantized with, on UTKFace photos
    (not LFW, which stays the test). Rebuild the graph and the sface-int8 calibration after."""
    from faceledger.evaluation.quantization import measure_int8_ranges
    from faceledger.vision.dnn.sface_int8 import RANGES_SHA256, ranges_path

    settings = get_settings()
    target = out or ranges_path()
    with reported_errors(), progress_bar("aligning UTKFace faces") as (set_total, advance):
        set_total(count)
        faces = measure_int8_ranges(
            data or settings.eval_data / "utkface",
            target,
            cache_dir=settings.cache_dir,
            count=count,
            progress=advance,
        )
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    out_console.print(f"wrote {target}: activation ranges over {faces} faces", highlight=False)
    same = "the same as" if digest == RANGES_SHA256 else "NOT the same as"
    out_console.print(f"SHA-256 {digest}: {same} the ranges this release pins", highlight=False)


def _fairness_calibration(recognizer: str) -> dict | None:
    """A model's thresholds from the worst demographic group, shipped by ``make audit``."""
    path = fairness_calibration_path(recognizer)
    return json.loads(path.read_text()) if path.is_file() else None
