"""Reading and verifying the ledger as a use case (auditors and admins)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from faceledger.governance.heads import SignedHead, read_heads
from faceledger.governance.ledger import (
    EventFilter,
    Verification,
    events_page,
    export_events,
    verify,
)
from faceledger.governance.signing import load_public_key
from faceledger.service.common import Request
from faceledger.service.context import Services


def verify_ledger(
    services: Services,
    request: Request,
    public_key_file: Path | None = None,
    heads_files: Sequence[Path] = (),
) -> Verification:
    """Recompute the chain and check every signature, against the server's key or a copy of
    the public key kept elsewhere (which also catches a replaced key); then check that the chain
    still holds every head in the anchor file and in ``heads_files`` (heads kept elsewhere:
    which catches events cut from the end). Read-only: verifying signs nothing."""
    request.actor.require("ledger:read")
    key = (
        load_public_key(public_key_file.read_bytes())
        if public_key_file
        else services.ledger.signer.public_key
    )
    anchor = services.settings.anchor_file
    files = [anchor, *heads_files] if anchor.exists() else list(heads_files)
    heads = [item for path in files for item in read_heads(path)]
    with services.db.read() as session:
        return verify(session, key, heads)


def newest_head(services: Services, request: Request) -> SignedHead | None:
    """The newest event as a signed head: keep it, and verify with it later (``--heads``)."""
    request.actor.require("ledger:read")
    with services.db.read() as session:
        return services.ledger.newest_head(session)


def ledger_events(
    services: Services,
    request: Request,
    after: int = 0,
    limit: int | None = None,
    only: EventFilter | None = None,
) -> Iterator[dict[str, Any]]:
    request.actor.require("ledger:read")
    with services.db.read() as session:
        yield from export_events(session, after, limit, only)


def find_events(
    services: Services, request: Request, after: int, limit: int, only: EventFilter
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the events ``only`` selects, and where the next page starts (None: done)."""
    request.actor.require("ledger:read")
    with services.db.read() as session:
        return events_page(session, after, limit, only)
