"""``faceledger video detect`` and ``faceledger video search``: a stored-video job on a local
file, with a progress bar, results as a table, JSON or CSV, and an HTML contact sheet."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from faceledger.cli.common import (
    err_console,
    out_console,
    print_json,
    progress_bar,
    reported_errors,
)
from faceledger.cli.local import (
    CaseOpt,
    DataDirOpt,
    LegalBasisOpt,
    PolicyOpt,
    PurposeOpt,
    RayAddressOpt,
    RayOpt,
    local_services,
    ray_address_of,
)

app = typer.Typer(help="Find faces and people in stored video.", no_args_is_help=True)

SampleOpt = Annotated[
    float, typer.Option("--sample-fps", min=0.1, max=60, help="Frames analysed per second.")
]
EveryOpt = Annotated[bool, typer.Option("--every-frame", help="Analyse every frame.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json or csv.")]
SheetOpt = Annotated[
    Path | None,
    typer.Option("--sheet", help="Write an HTML contact sheet (face crops!) to this file."),
]
GAP_MS = 1000  # sightings further apart start a new time range


@app.command("detect")
def detect(
    file: Path,
    sample_fps: SampleOpt = 5.0,
    every_frame: EveryOpt = False,
    output: FormatOpt = "table",
    sheet: SheetOpt = None,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The faces in a video file, followed across frames (one index per person)."""
    _run(
        "detect",
        file,
        None,
        80.0,
        None if every_frame else sample_fps,
        output,
        sheet,
        data_dir,
        ray_address_of(ray, ray_address),
        purpose=purpose,
        policy=policy,
    )


@app.command("search")
def search(
    collection_id: str,
    file: Path,
    threshold: Annotated[float, typer.Option(min=0, max=100)] = 80.0,
    sample_fps: SampleOpt = 5.0,
    every_frame: EveryOpt = False,
    output: FormatOpt = "table",
    sheet: SheetOpt = None,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    case: CaseOpt = None,
    legal_basis: LegalBasisOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The collection's faces like the people in a video file: candidates for review."""
    _run(
        "search",
        file,
        collection_id,
        threshold,
        None if every_frame else sample_fps,
        output,
        sheet,
        data_dir,
        ray_address_of(ray, ray_address),
        purpose=purpose,
        policy=policy,
        case=case,
        legal_basis=legal_basis,
    )


def _run(
    kind: str,
    file: Path,
    collection_id: str | None,
    threshold: float,
    sample_fps: float | None,
    output: str,
    sheet: Path | None,
    data_dir: Path | None,
    ray_address: str,
    **context: Any,
) -> None:
    from faceledger.service import video as video_cases

    if output not in ("table", "json", "csv"):
        raise typer.BadParameter("--format is table, json or csv")
    changes = {"ray_address": ray_address} if ray_address else {}
    with local_services(data_dir, context.pop("purpose"), **context, **changes) as (
        services,
        request,
    ):
        with reported_errors():
            job_id = video_cases.start_job(
                services,
                request,
                kind,
                video_cases.VideoSource(file.resolve(), None, file.name),
                collection_id=collection_id,
                threshold=threshold,
                sample_fps=sample_fps,
            )
        with progress_bar(f"{kind} {file.name}") as (set_total, advance):
            done = 0
            while True:
                page = video_cases.get_job(services, request, job_id, max_results=1)
                set_total(max(page.job.frames_total, page.job.frames_done))
                advance(page.job.frames_done - done)
                done = page.job.frames_done
                if page.job.status != "IN_PROGRESS":
                    break
                time.sleep(0.2)
        job = page.job
        results = _all_results(video_cases, services, request, job_id)
    if job.status != "SUCCEEDED":
        err_console.print(f"[red]job {job.status}[/red]: {job.status_message}", highlight=False)
        raise typer.Exit(3 if "damaged" in (job.status_message or "") else 1)
    summary = {
        "job_id": job.job_id,
        "video": file.name,
        "metadata": job.metadata_,
        "sample_fps": sample_fps,
        "scan_fps": job.parameters.get("scan_fps"),
        "threshold": job.parameters.get("threshold"),
        "review_task_id": job.review_task_id,
        "persons": _persons(results),
        "results": results,
    }
    if sheet is not None:
        with reported_errors():
            sheet.write_text(_contact_sheet(file, summary, sample_fps))
        err_console.print(f"contact sheet: {sheet}")
    if output == "json":
        print_json(summary)
    elif output == "csv":
        _write_csv(results, kind)
    else:
        _print_table(summary, kind)


def _all_results(cases: Any, services: Any, request: Any, job_id: str) -> list[dict]:
    results, token = [], None
    while True:
        page = cases.get_job(services, request, job_id, max_results=1000, next_token=token)
        results += page.results
        token = page.next_token
        if not token:
            return results


def _persons(results: list[dict]) -> list[dict[str, Any]]:
    """Per person: time ranges, sightings, best face (by size), candidates."""
    people: dict[int, dict[str, Any]] = {}
    for r in results:
        person = people.setdefault(
            r["person_index"], {"index": r["person_index"], "times": [], "best": r, "matches": {}}
        )
        person["times"].append(r["timestamp_ms"])
        if r["face"]["box"]["width"] > person["best"]["face"]["box"]["width"]:
            person["best"] = r
        for m in r.get("matches", []):
            person["matches"][m["face_id"]] = m
    out = []
    for p in sorted(people.values(), key=lambda p: p["index"]):
        ranges: list[list[int]] = []
        for t in sorted(p["times"]):
            if ranges and t - ranges[-1][1] <= GAP_MS:
                ranges[-1][1] = t
            else:
                ranges.append([t, t])
        out.append(
            {
                "index": p["index"],
                "sightings": len(p["times"]),
                "time_ranges_ms": ranges,
                "best": {"timestamp_ms": p["best"]["timestamp_ms"], **p["best"]["face"]},
                "candidates": sorted(p["matches"].values(), key=lambda m: -m["similarity"]),
            }
        )
    return out


def _print_table(summary: dict, kind: str) -> None:
    from rich.table import Table

    meta = summary["metadata"] or {}
    table = Table(
        "person",
        "seen (s)",
        "sightings",
        *(["candidates"] if kind == "search" else []),
        title=f"{summary['video']}: {meta.get('width')}x{meta.get('height')}, "
        f"{meta.get('duration_ms', 0) / 1000:.1f} s, sampled at "
        f"{summary['sample_fps'] or 'every frame'} per second",
        title_justify="left",
    )
    for p in summary["persons"]:
        seen = ", ".join(f"{a / 1000:.1f}-{b / 1000:.1f}" for a, b in p["time_ranges_ms"])
        row = [str(p["index"]), seen, str(p["sightings"])]
        if kind == "search":
            row.append(
                ", ".join(
                    f"{m['external_image_id'] or m['face_id'][:8]} {m['similarity']:.1f}"
                    for m in p["candidates"][:3]
                )
                or "-"
            )
        table.add_row(*row)
    out_console.print(table)
    if kind == "search":
        out_console.print("Candidates for a person to review, not identifications.")


def _write_csv(results: list[dict], kind: str) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(
        ["timestamp_ms", "person", "left", "top", "width", "height", "confidence"]
        + (["face_id", "external_image_id", "similarity"] if kind == "search" else [])
    )
    for r in results:
        box = r["face"]["box"]
        base = [
            r["timestamp_ms"],
            r["person_index"],
            *(round(box[k], 1) for k in ("left", "top", "width", "height")),
            r["face"]["confidence"],
        ]
        matches = r.get("matches") or [None] if kind == "search" else [None]
        for m in matches:
            extra = (
                []
                if kind != "search"
                else (
                    ["", "", ""]
                    if m is None
                    else [m["face_id"], m["external_image_id"] or "", m["similarity"]]
                )
            )
            writer.writerow(base + extra)


def _contact_sheet(file: Path, summary: dict, sample_fps: float | None) -> str:
    """Each person's best face crop, when they are seen, and their candidates: what a reviewer
    looks at. Crops are cut from the video again (nothing was stored)."""
    from PIL import Image

    from faceledger.imaging.video import frames

    wanted = {p["best"]["timestamp_ms"]: [] for p in summary["persons"]}
    for p in summary["persons"]:
        wanted[p["best"]["timestamp_ms"]].append(p)
    crops: dict[int, str] = {}
    for frame in frames(file, sample_fps):
        for p in wanted.get(frame.timestamp_ms, []):
            b = p["best"]["box"]
            pad = 0.25 * b["width"]
            box = (
                int(max(0, b["left"] - pad)),
                int(max(0, b["top"] - pad)),
                int(b["left"] + b["width"] + pad),
                int(b["top"] + b["height"] + pad),
            )
            image = Image.fromarray(frame.rgb).crop(box)
            image.thumbnail((160, 160))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=85)
            crops[p["index"]] = base64.b64encode(buffer.getvalue()).decode()
    cards = []
    for p in summary["persons"]:
        seen = ", ".join(f"{a / 1000:.1f}-{b / 1000:.1f} s" for a, b in p["time_ranges_ms"])
        candidates = (
            "".join(
                f"<li>{html.escape(m['external_image_id'] or m['face_id'])}: similarity "
                f"{m['similarity']:.1f}, est. false match rate {m['false_match_rate']:.2g}</li>"
                for m in p["candidates"]
            )
            or "<li>none at this threshold</li>"
        )
        image = (
            f'<img alt="person {p["index"]}" src="data:image/jpeg;base64,{crops[p["index"]]}">'
            if p["index"] in crops
            else ""
        )
        cards.append(
            f'<section class="card"><h2>Person {p["index"]}</h2>{image}<p>Seen {seen} '
            f"({p['sightings']} sightings)</p><h3>Candidates</h3><ul>{candidates}</ul></section>"
        )
    title = html.escape(f"{summary['video']}: contact sheet")
    return (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}.card{display:inline-block;width:240px;"
        "vertical-align:top;border:1px solid #999;margin:.5em;padding:.5em}</style>"
        f"<h1>{title}</h1><p>Candidates are for a person to review, never identifications. "
        f"Job {html.escape(summary['job_id'])}; review task "
        f"{html.escape(summary['review_task_id'] or 'none')}.</p>{''.join(cards)}</html>"
    )


def watch(
    collection_id: str,
    source: Annotated[str, typer.Argument(help="Stream URL, /dev/videoN, or a video file.")],
    listen: Annotated[bool, typer.Option(help="Wait for the camera to push (RTSP).")] = False,
    threshold: Annotated[float, typer.Option(min=0, max=100)] = 80.0,
    sample_fps: Annotated[float, typer.Option("--sample-fps", min=0.1, max=30)] = 2.0,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert a line.")] = False,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    case: CaseOpt = None,
    legal_basis: LegalBasisOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Watch a live stream (or play a file in real time) for the collection's people. A
    person with candidates is an alert, opened for review: never an identification."""
    from faceledger.service import watch as watch_cases

    with local_services(data_dir, purpose, policy=policy, case=case, legal_basis=legal_basis) as (
        services,
        request,
    ):
        with reported_errors():
            source = (
                source
                if "://" in source or source.startswith("/dev/")
                else str(Path(source).resolve())
            )
            running = watch_cases.start_watch(
                services,
                request,
                collection_id,
                source,
                threshold=threshold,
                sample_fps=sample_fps,
                listen=listen,
            )
        err_console.print(f"watching {source} for {collection_id} (Ctrl-C stops)")
        deadline = None if seconds is None else time.monotonic() + seconds
        seq = 0
        try:
            while running.state in ("connecting", "running", "reconnecting"):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                for alert in running.alerts_after(seq, 0.5):
                    seq = alert.seq
                    _print_alert(alert.as_json(), as_json)
        except KeyboardInterrupt:
            pass
        finally:
            running.stop_event.set()
            for _ in range(50):
                if running.state not in ("connecting", "running", "reconnecting"):
                    break
                time.sleep(0.1)
        for alert in running.alerts_after(seq, 0):
            _print_alert(alert.as_json(), as_json)
        status = running.status()
    err_console.print(
        f"{status['state']}: {status['frames']} frames, {status['alerts']} alerts, "
        f"{status['reconnects']} reconnects"
    )
    if status["state"] == "failed":
        err_console.print(f"[red]{status['message']}[/red]", highlight=False)
        raise typer.Exit(1)


def _print_alert(alert: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(alert) + "\n")
        sys.stdout.flush()
        return
    names = ", ".join(
        f"{c['external_image_id'] or c['face_id'][:8]} {c['similarity']:.1f}"
        for c in alert["candidates"]
    )
    out_console.print(
        f"{alert['time']} person {alert['person']} at {alert['stream_ms'] / 1000:.1f} s: "
        f"candidates {names} (review task {alert['review_task_id'] or 'none'})"
    )
