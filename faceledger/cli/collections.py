"""``faceledger collections``, ``index``, ``search`` and ``users`` on a data directory."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.common import (
    err_console,
    exit_code_for,
    fail,
    id_column,
    lazy_module,
    out_console,
    print_json,
    progress_bar,
    reported_errors,
    to_plain,
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
from faceledger.errors import FaceledgerError, InvalidParameterError
from faceledger.vision import QualityLevel

collection_cases = lazy_module("faceledger.service.collections")
crop_cases = lazy_module("faceledger.service.crops")
face_cases = lazy_module("faceledger.service.faces")
user_cases = lazy_module("faceledger.service.users")

collections_app = typer.Typer(help="Face collections.", no_args_is_help=True)
users_app = typer.Typer(help="Users: several faces of one person.", no_args_is_help=True)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
JsonOpt = Annotated[bool, typer.Option("--json")]


@collections_app.command("create")
def create(
    collection_id: str,
    model: Annotated[
        str | None,
        typer.Option(
            help="Face model, kept for the collection's life: sface-int8, sface or dlib "
            "(default: FACELEDGER_FACE_MODEL, sface-int8)."
        ),
    ] = None,
    keep_crops: Annotated[
        bool | None,
        typer.Option(
            "--keep-crops/--no-keep-crops",
            help="Keep an encrypted crop of each face for human review (default: "
            "FACELEDGER_KEEP_FACE_CROPS; auto keeps them where a review policy is in use).",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        info = collection_cases.create_collection(
            services, request, collection_id, face_model=model, keep_face_crops=keep_crops
        )
    crops = "keeps review crops" if info.keep_face_crops else "keeps no crops"
    out_console.print(
        f"created collection {collection_id} (model {info.face_model_version}; {crops})"
    )


@collections_app.command("crops")
def crops_switch(
    collection_id: str,
    keep: Annotated[str, typer.Argument(help="on (faces indexed from now) or off (deletes all)")],
    data_dir: DataDirOpt = None,
) -> None:
    """Keep review crops for a collection's faces from now on, or stop and delete them all."""
    if keep not in ("on", "off"):
        raise fail(InvalidParameterError("say on or off"))
    with local_services(data_dir) as (services, request), reported_errors():
        deleted = crop_cases.set_keep_face_crops(services, request, collection_id, keep == "on")
    out_console.print(
        f"{collection_id}: review crops {keep}" + (f"; deleted {deleted}" if keep == "off" else "")
    )


@collections_app.command("list")
def list_(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request):
        found, token = [], None
        while True:
            page = collection_cases.list_collections(services, request, next_token=token)
            found += page.items
            if not (token := page.next_token):
                break
    if as_json:
        print_json(found)
    else:
        for c in found:
            out_console.print(f"{c.collection_id}  {c.face_model_version}")


@collections_app.command("describe")
def describe(collection_id: str, as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        info = collection_cases.describe_collection(services, request, collection_id)
    if as_json:
        print_json(info)
    else:
        out_console.print(
            f"{info.collection_id}: {info.face_count} faces, {info.user_count} "
            f"users, model {info.face_model_version}, created {info.created_at}"
        )


@collections_app.command("delete")
def delete(
    collection_id: str,
    data_dir: DataDirOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    if not yes:
        typer.confirm(f"Delete collection {collection_id} and all its faces?", abort=True)
    with local_services(data_dir) as (services, request), reported_errors():
        faces = collection_cases.delete_collection(services, request, collection_id)
    out_console.print(f"deleted collection {collection_id} ({faces} faces)")


def image_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    return files


def external_id_for(path: Path) -> str:
    return re.sub(r"[^a-zA-Z0-9_.\-:]", "_", path.stem)[:255] or "image"


def index(
    collection_id: str,
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (recursive).")],
    max_faces: Annotated[int | None, typer.Option(min=1, max=100)] = None,
    quality_filter: Annotated[QualityLevel, typer.Option()] = QualityLevel.AUTO,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    case: CaseOpt = None,
    legal_basis: LegalBasisOpt = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Local threads analysing images (default: the cores)."),
    ] = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Index the faces of images; the external image id is the file name without suffix. The
    images are analysed in parallel (local threads, or Ray tasks with --ray); every write is
    made here, governed and on the ledger. One bad file does not stop the others; the exit code
    says the worst thing that happened (3 when an image was refused or gave no face)."""
    from faceledger.service import ingest

    files = image_files(paths)
    indexed, skipped, failed = 0, Counter[str](), Counter[str]()
    worst = 0
    with local_services(data_dir, purpose, policy=policy, case=case, legal_basis=legal_basis) as (
        services,
        request,
    ):
        with reported_errors():
            collection_cases.describe_collection(services, request, collection_id)
            address = ray_address_of(ray, ray_address)
            workers = (
                ingest.RayWorkers(address)
                if address
                else ingest.LocalWorkers(threads or os.cpu_count() or 1)
            )
        with progress_bar(f"indexing ({workers.name})") as (set_total, advance):
            set_total(len(files))

            def done(file: Path, outcome: ingest.Outcome) -> None:
                nonlocal indexed, worst
                if isinstance(outcome, FaceledgerError):
                    failed[outcome.code] += 1
                    worst = max(worst, exit_code_for(outcome))
                    err_console.print(
                        f"skipped {file}: {outcome.code}: {outcome.message}",
                        highlight=False,
                        soft_wrap=True,
                    )
                elif isinstance(outcome, OSError):
                    failed["UNREADABLE"] += 1
                    worst = max(worst, 3)
                    err_console.print(f"skipped {file}: {outcome}", highlight=False, soft_wrap=True)
                else:
                    indexed += len(outcome.indexed)
                    if not outcome.indexed:
                        worst = max(worst, 3)  # no face, or none good enough to index
                    if not outcome.indexed and not outcome.unindexed:
                        skipped["NO_FACE_DETECTED"] += 1
                    for face in outcome.unindexed:
                        skipped.update(face.reasons)
                advance(1)

            try:
                ingest.index_files(
                    services,
                    request,
                    collection_id,
                    ((file, external_id_for(file)) for file in files),
                    workers,
                    max_faces=max_faces,
                    quality_filter=quality_filter,
                    done=done,
                )
            finally:
                workers.close()
    summary = {
        "images": len(files),
        "indexed_faces": indexed,
        "unindexed_faces_by_reason": dict(skipped),
        "failed_images": dict(failed),
        "analysed_by": workers.name,
    }
    if as_json:
        print_json(summary)
    else:
        out_console.print(f"{len(files)} images ({workers.name}): {indexed} faces indexed")
        for reason, count in sorted(skipped.items()):
            out_console.print(f"  not indexed, {reason}: {count}")
        for code, count in sorted(failed.items()):
            out_console.print(f"  images refused, {code}: {count}")
    if worst:
        raise typer.Exit(worst)


def search(
    collection_id: str,
    image: Path,
    threshold: Annotated[float, typer.Option(min=0, max=100)] = 80.0,
    max_faces: Annotated[int, typer.Option("--max", min=1, max=4096)] = 10,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    case: CaseOpt = None,
    legal_basis: LegalBasisOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Faces of the collection like the largest face in IMAGE: candidates for review."""
    with (
        local_services(data_dir, purpose, policy=policy, case=case, legal_basis=legal_basis) as (
            services,
            request,
        ),
        reported_errors(),
    ):
        result = face_cases.search_faces_by_image(
            services,
            request,
            collection_id,
            image.read_bytes(),
            threshold=threshold,
            max_faces=max_faces,
        )
    if as_json:
        print_json(result)
        return
    table = Table(
        "#",
        id_column("face id", [m.face.face_id for m in result.matches]),
        "external image id",
        "similarity",
        "est. FMR",
        title=f"{len(result.matches)} candidate(s) at similarity >= {threshold:g}",
        title_justify="left",
    )
    for i, m in enumerate(result.matches, 1):
        fmr = f"{'< ' if m.fmr_upper_bound else ''}{m.false_match_rate:.2g}"
        table.add_row(
            str(i), m.face.face_id, m.face.external_image_id or "", f"{m.similarity:.2f}", fmr
        )
    out_console.print(table)
    out_console.print("Candidates for a person to review, not identifications.")


@users_app.command("create")
def user_create(collection_id: str, user_id: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        user_cases.create_user(services, request, collection_id, user_id)
    out_console.print(f"created user {user_id} in {collection_id}")


@users_app.command("delete")
def user_delete(collection_id: str, user_id: str, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        user_cases.delete_user(services, request, collection_id, user_id)
    out_console.print(f"deleted user {user_id}")


@users_app.command("list")
def user_list(collection_id: str, as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        users, token = [], None
        while True:
            page = user_cases.list_users(services, request, collection_id, next_token=token)
            users += page.items
            if not (token := page.next_token):
                break
    if as_json:
        print_json(users)
    else:
        for u in users:
            out_console.print(f"{u.user_id}\t{u.status}\t{u.face_count} faces")


@users_app.command("associate")
def user_associate(
    collection_id: str,
    user_id: str,
    face_ids: list[str],
    user_match_threshold: Annotated[float, typer.Option(min=0, max=100)] = 75.0,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        result = user_cases.associate_faces(
            services,
            request,
            collection_id,
            user_id,
            face_ids,
            user_match_threshold=user_match_threshold,
        )
    if as_json:
        print_json(result)
        return
    out_console.print(f"associated {len(result.associated)} face(s); user is {result.user_status}")
    for failure in result.unsuccessful:
        out_console.print(f"  not associated {failure.face_id}: {', '.join(failure.reasons)}")


@users_app.command("disassociate")
def user_disassociate(
    collection_id: str, user_id: str, face_ids: list[str], data_dir: DataDirOpt = None
) -> None:
    with local_services(data_dir) as (services, request), reported_errors():
        result = user_cases.disassociate_faces(services, request, collection_id, user_id, face_ids)
    out_console.print(
        f"disassociated {len(result.disassociated)} face(s); user is {result.user_status}"
    )
    for failure in result.unsuccessful:
        out_console.print(f"  not disassociated {failure.face_id}: {', '.join(failure.reasons)}")


@users_app.command("search")
def user_search(
    collection_id: str,
    image: Annotated[
        Path | None, typer.Option(help="Search with this image's largest face.")
    ] = None,
    face_id: Annotated[str | None, typer.Option()] = None,
    user_id: Annotated[str | None, typer.Option()] = None,
    threshold: Annotated[float, typer.Option(min=0, max=100)] = 80.0,
    purpose: PurposeOpt = None,
    policy: PolicyOpt = None,
    case: CaseOpt = None,
    legal_basis: LegalBasisOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Users like an image's largest face, a stored face, or another user."""
    with (
        local_services(data_dir, purpose, policy=policy, case=case, legal_basis=legal_basis) as (
            services,
            request,
        ),
        reported_errors(),
    ):
        result = user_cases.search_users(
            services,
            request,
            collection_id,
            face_id=face_id,
            user_id=user_id,
            image_bytes=image.read_bytes() if image else None,
            user_match_threshold=threshold,
        )
    if as_json:
        print_json(to_plain(result))
        return
    for m in result.matches:
        out_console.print(
            f"{m.user_id}\tsimilarity {m.similarity:.2f}\test. FMR {m.false_match_rate:.2g}"
        )
    if not result.matches:
        out_console.print("no user reached the threshold")
