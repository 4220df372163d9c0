"""Reading and verifying the ledger as a use case (auditors and admins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceledger.governance.ledger import Verification, export_events, verify
from faceledger.governance.signing import load_public_key
from faceledger.service.common import Request
from faceledger.service.context import Services


def verify_ledger(
    services: Services, request: Request, public_key_file: Path | None = None
) -> Verification:
    """Recompute the chain; signatures are checked against the server's key, or against a
    copy of the public key kept elsewhere (which also catches a replaced key)."""
    request.actor.require("ledger:read")
    key = (
        load_public_key(public_key_file.read_bytes())
        if public_key_file
        else services.ledger.signer.public_key
    )
    with services.db.read() as session:
        return verify(session, key)


def ledger_events(services: Services, request: Request) -> Iterator[dict[str, Any]]:
    request.actor.require("ledger:read")
    with services.db.read() as session:
        yield from export_events(session)
