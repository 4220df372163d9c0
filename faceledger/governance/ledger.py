"""The audit ledger: an append-only, hash-chained, signed record of every use of biometric data.

Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
(sorted keys, no spaces, UTF-8), so editing, inserting or deleting an event breaks the chain
from there on. Recomputing the whole chain is possible for whoever can write the database, so
the chain head is also signed with the server's Ed25519 key every 100 events (in
the same transaction) and at shutdown; rewriting the chain without the key breaks those
signatures. Events hold no images and no descriptors: hashes, ids, parameters and scores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.governance.signing import Signer, key_id, signature_valid
from faceledger.store.schema import LedgerEventRow, LedgerSignatureRow

GENESIS = "0" * 64
# Part of the ledger's format, not a setting: verification must not depend on configuration an
# attacker could change, so every ledger has a signed head at every multiple of this.
SIGN_EVERY = 100


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def head_message(seq: int, head_hash: str) -> bytes:
    return f"faceledger-ledger-head:{seq}:{head_hash}".encode()


@dataclass(frozen=True)
class Event:
    """What an operation records. ``results`` are ids and scores, never biometric data."""

    operation: str
    actor_key_id: str
    actor_role: str
    collection_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    purpose: str | None = None
    image_sha256: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    signatures: int
    last_signed_seq: int
    unsigned_tail: int
    first_bad_seq: int | None = None
    reason: str | None = None


class Ledger:
    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def append(self, session: Session, event: Event) -> LedgerEventRow:
        """Add an event inside the caller's transaction (so it commits with the effect)."""
        last = session.execute(
            select(LedgerEventRow.seq, LedgerEventRow.hash)
            .order_by(LedgerEventRow.seq.desc())
            .limit(1)
        ).first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        time = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        body = canonical_json({"seq": seq, "time": time, **_event_fields(event)})
        row = LedgerEventRow(
            seq=seq,
            time=time,
            operation=event.operation,
            actor_key_id=event.actor_key_id,
            collection_id=event.collection_id,
            body=body,
            prev_hash=prev_hash,
            hash=chain_hash(prev_hash, body),
        )
        session.add(row)
        if seq % SIGN_EVERY == 0:
            session.flush()
            self._sign(session, seq, row.hash)
        return row

    def sign_head(self, session: Session) -> int | None:
        """Sign the newest event (at shutdown); returns its seq, None for an empty ledger."""
        last = session.execute(
            select(LedgerEventRow.seq, LedgerEventRow.hash)
            .order_by(LedgerEventRow.seq.desc())
            .limit(1)
        ).first()
        if last is None:
            return None
        if session.get(LedgerSignatureRow, last[0]) is None:
            self._sign(session, last[0], last[1])
        return int(last[0])

    def _sign(self, session: Session, seq: int, head_hash: str) -> None:
        session.add(
            LedgerSignatureRow(
                seq=seq,
                head_hash=head_hash,
                signature=self.signer.sign(head_message(seq, head_hash)),
                public_key_id=self.signer.key_id,
            )
        )


def verify(session: Session, public_key: Ed25519PublicKey) -> Verification:
    """Recompute the chain and check the signatures; names the first bad event."""
    expected_prev, count = GENESIS, 0
    hashes: dict[int, str] = {}

    def bad(at: int, reason: str) -> Verification:
        return Verification(False, count, 0, 0, 0, at, reason)

    rows = session.scalars(select(LedgerEventRow).order_by(LedgerEventRow.seq))
    for seq, row in enumerate(rows, start=1):
        if row.seq != seq:
            return bad(seq, f"event {seq} is missing (next stored event is {row.seq})")
        if row.prev_hash != expected_prev:
            return bad(seq, "its previous-hash link does not match the event before it")
        if chain_hash(row.prev_hash, row.body) != row.hash:
            return bad(seq, "its content does not match its hash (edited)")
        try:
            body = json.loads(row.body)
        except ValueError:
            return bad(seq, "its body is not JSON")
        copies = {
            "seq": row.seq,
            "time": row.time,
            "operation": row.operation,
            "actor_key_id": row.actor_key_id,
            "collection_id": row.collection_id,
        }
        if any(body.get(k) != v for k, v in copies.items()):
            return bad(seq, "its indexed columns disagree with its hashed body")
        hashes[seq] = row.hash
        expected_prev = row.hash
        count += 1

    signatures = {s.seq: s for s in session.scalars(select(LedgerSignatureRow))}
    public_id = key_id(public_key)
    for s_seq in sorted(signatures):
        s = signatures[s_seq]
        if s_seq not in hashes or hashes[s_seq] != s.head_hash:
            return Verification(
                False,
                count,
                len(signatures),
                0,
                0,
                s_seq,
                "a signed chain head does not match the stored chain (rewritten)",
            )
        if s.public_key_id != public_id or not signature_valid(
            public_key, head_message(s_seq, s.head_hash), s.signature
        ):
            return Verification(
                False,
                count,
                len(signatures),
                0,
                0,
                s_seq,
                "the signature over this chain head is not valid for the key",
            )
    for required in range(SIGN_EVERY, count + 1, SIGN_EVERY):
        if required not in signatures:
            return Verification(
                False,
                count,
                len(signatures),
                0,
                0,
                required,
                f"the signature due at event {required} is missing",
            )
    last_signed = max(signatures, default=0)
    return Verification(True, count, len(signatures), last_signed, count - last_signed)


def export_events(session: Session) -> Iterator[dict[str, Any]]:
    """Every event with its chain fields, oldest first (for JSON Lines)."""
    for row in session.scalars(select(LedgerEventRow).order_by(LedgerEventRow.seq)):
        yield {"event": json.loads(row.body), "prev_hash": row.prev_hash, "hash": row.hash}


def _event_fields(event: Event) -> dict[str, Any]:
    return {
        "operation": event.operation,
        "actor_key_id": event.actor_key_id,
        "actor_role": event.actor_role,
        "collection_id": event.collection_id,
        "parameters": event.parameters,
        "purpose": event.purpose,
        "image_sha256": event.image_sha256,
        "results": event.results,
        "outcome": event.outcome,
    }
