"""The audit ledger: an append-only, hash-chained, signed record of every use of biometric data.

Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
(sorted keys, no spaces, UTF-8), so editing, inserting or deleting an event breaks the chain
from there on. Whoever can write the database could recompute the whole chain, so the writer
also signs each event's (seq, hash) with the server's Ed25519 key as it appends it: nothing can
be added or rewritten without the key. Only the writer that has just extended the chain signs;
verifying never writes.

What a database writer *can* still do without the key is cut events off the end. That is caught
by heads held elsewhere: every 100th event, and at least once a minute while events arrive, the
head is a checkpoint, published after commit to an anchor file outside the database and to
witnesses (:mod:`faceledger.governance.heads`); ``verify`` with those heads fails if the chain no
longer holds them. A writing process also remembers the newest head it has seen and refuses to
extend a chain that no longer contains it. Events hold no images and no descriptors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from faceledger.errors import LedgerError
from faceledger.governance.heads import AnchorFile, SignedHead, Witnesses, head_message
from faceledger.governance.signing import Signer, key_id, signature_valid
from faceledger.store.schema import LedgerEventRow, LedgerSignatureRow, as_utc

GENESIS = "0" * 64
# Part of the ledger's format, not a setting: verification must not depend on configuration an
# attacker could change, so every ledger has a checkpoint at every multiple of this.
SIGN_EVERY = 100
# A checkpoint at least this often while events arrive, however few they are.
CHECKPOINT_SECONDS = 60.0

__all__ = ["GENESIS", "SIGN_EVERY", "Event", "Ledger", "SignedHead", "Verification"]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    signatures: int  # checkpoints stored in the database
    last_signed_seq: int  # the newest checkpoint
    unsigned_tail: int  # events after the newest checkpoint (each is still signed itself)
    first_bad_seq: int | None = None
    reason: str | None = None
    heads_checked: int = 0  # heads held outside the database that were checked


class Ledger:
    def __init__(
        self,
        signer: Signer,
        *,
        anchor: AnchorFile | None = None,
        witnesses: Witnesses | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.signer = signer
        self.anchor = anchor
        self.witnesses = witnesses or Witnesses(())
        self.clock = clock
        self._seen: tuple[int, str] | None = None
        self._seen_lock = threading.Lock()

    def expect(self, head: SignedHead | None) -> None:
        """Refuse to extend any chain that does not contain ``head`` (e.g. the anchor file's
        newest head, at start)."""
        if head is not None:
            with self._seen_lock:
                if self._seen is None or head.seq > self._seen[0]:
                    self._seen = (head.seq, head.hash)

    def append(self, session: Session, event: Event) -> LedgerEventRow:
        """Add an event inside the caller's transaction (so it commits with the effect)."""
        last = session.execute(
            select(LedgerEventRow.seq, LedgerEventRow.hash)
            .order_by(LedgerEventRow.seq.desc())
            .limit(1)
        ).first()
        self._check_not_rolled_back(session, last)
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        now = self.clock()
        time = now.isoformat(timespec="microseconds")
        body = canonical_json({"seq": seq, "time": time, **_event_fields(event)})
        head_hash = chain_hash(prev_hash, body)
        signature = self.signer.sign(head_message(seq, head_hash))
        row = LedgerEventRow(
            seq=seq,
            time=time,
            operation=event.operation,
            actor_key_id=event.actor_key_id,
            collection_id=event.collection_id,
            body=body,
            prev_hash=prev_hash,
            hash=head_hash,
            signature=signature,
        )
        session.add(row)
        self._on_commit(session)["appended"] = (seq, head_hash)
        if self._checkpoint_due(session, seq, now):
            session.flush()
            session.add(
                LedgerSignatureRow(
                    seq=seq,
                    head_hash=head_hash,
                    signature=signature,
                    public_key_id=self.signer.key_id,
                    signed_at=now,
                )
            )
            self._on_commit(session)["heads"].append(
                SignedHead(seq, head_hash, time, signature, self.signer.key_id)
            )
        return row

    def newest_head(self, session: Session) -> SignedHead | None:
        """The newest event as a signed head (what an auditor keeps to check the chain later)."""
        row = session.scalars(
            select(LedgerEventRow)
            .where(LedgerEventRow.signature.is_not(None))
            .order_by(LedgerEventRow.seq.desc())
            .limit(1)
        ).first()
        if row is None or row.signature is None:
            return None
        return SignedHead(row.seq, row.hash, row.time, row.signature, self.signer.key_id)

    def close(self) -> None:
        self.witnesses.flush()

    # -- internals ---------------------------------------------------------------------------

    def _check_not_rolled_back(self, session: Session, last: Any) -> None:
        with self._seen_lock:
            seen = self._seen
            if seen is not None:
                seen_seq, seen_hash = seen
                if _hash_at(session, last, seen_seq) != seen_hash:
                    raise LedgerError(
                        f"the ledger no longer holds event {seen_seq} as it was seen "
                        "(truncated or rewritten since); refusing to extend it. "
                        "Run 'faceledger ledger verify'."
                    )
            if last is not None:
                self._seen = (int(last[0]), str(last[1]))

    def _checkpoint_due(self, session: Session, seq: int, now: dt.datetime) -> bool:
        if seq % SIGN_EVERY == 0:
            return True
        newest = session.scalar(
            select(LedgerSignatureRow.signed_at).order_by(LedgerSignatureRow.seq.desc()).limit(1)
        )
        return newest is None or (now - as_utc(newest)).total_seconds() >= CHECKPOINT_SECONDS

    def _on_commit(self, session: Session) -> dict[str, Any]:
        """What this transaction leaves to do once it commits: remember the newest event this
        process appended, and publish its checkpoints (a rolled-back head is never published)."""
        pending = session.info.get("ledger")
        if pending is None:
            pending = session.info["ledger"] = {"appended": None, "heads": []}

            def committed(done: Session) -> None:
                state = done.info.pop("ledger", None)
                if state is None:
                    return
                if state["appended"] is not None:
                    with self._seen_lock:
                        if self._seen is None or state["appended"][0] > self._seen[0]:
                            self._seen = state["appended"]
                if self.anchor is not None:
                    self.anchor.append(state["heads"])
                self.witnesses.publish(state["heads"])

            sa_event.listen(session, "after_commit", committed, once=True)
            sa_event.listen(
                session, "after_rollback", lambda s: s.info.pop("ledger", None), once=True
            )
        return pending


def _hash_at(session: Session, last: Any, seq: int) -> str | None:
    """The stored hash of event ``seq``; ``last`` is the newest (seq, hash), read already."""
    if last is None or last[0] < seq:
        return None
    if last[0] == seq:
        return str(last[1])
    return session.scalar(select(LedgerEventRow.hash).where(LedgerEventRow.seq == seq))


def verify(
    session: Session,
    public_key: Ed25519PublicKey,
    heads: Iterable[tuple[str, SignedHead]] = (),
) -> Verification:
    """Recompute the chain, check every signature, and check that the chain still holds each of
    ``heads`` ((where, head) pairs, e.g. from an anchor file). Read-only; names the first bad
    event. Reads the events once, keeping only the hashes the checks need."""
    public_id = key_id(public_key)
    checkpoints = {s.seq: s for s in session.scalars(select(LedgerSignatureRow))}
    held = list(heads)
    wanted = set(checkpoints) | {h.seq for _, h in held}
    hashes: dict[int, str] = {}
    expected_prev, count, signed_seen = GENESIS, 0, False

    def result(ok: bool, at: int | None = None, reason: str | None = None) -> Verification:
        last = max(checkpoints, default=0)
        return Verification(
            ok, count, len(checkpoints), last, max(count - last, 0), at, reason, len(held)
        )

    rows = session.scalars(select(LedgerEventRow).order_by(LedgerEventRow.seq))
    for seq, row in enumerate(rows, start=1):
        problem = _event_problem(row, seq, expected_prev, public_key, signed_seen)
        if problem:
            return result(False, seq, problem)
        signed_seen = signed_seen or row.signature is not None
        if seq in wanted:
            hashes[seq] = row.hash
        expected_prev = row.hash
        count += 1

    for s_seq in sorted(checkpoints):
        s = checkpoints[s_seq]
        if hashes.get(s_seq) != s.head_hash:
            return result(False, s_seq, "a signed chain head does not match the stored chain")
        if s.public_key_id != public_id or not signature_valid(
            public_key, head_message(s_seq, s.head_hash), s.signature
        ):
            return result(
                False, s_seq, "the signature over this chain head is not valid for the key"
            )
    for required in range(SIGN_EVERY, count + 1, SIGN_EVERY):
        if required not in checkpoints:
            return result(False, required, f"the checkpoint due at event {required} is missing")
    for where, head in held:
        if not signature_valid(public_key, head_message(head.seq, head.hash), head.signature):
            return result(False, head.seq, f"the head at {where} is not signed by the ledger's key")
        if head.seq > count:
            return result(
                False,
                head.seq,
                f"the head at {where} names event {head.seq}, but the ledger ends at "
                f"{count}: events were deleted from its end",
            )
        if hashes.get(head.seq) != head.hash:
            return result(
                False,
                head.seq,
                f"the head at {where} does not match event {head.seq}: the chain was rewritten",
            )
    return result(True)


def _event_problem(
    row: LedgerEventRow,
    seq: int,
    expected_prev: str,
    public_key: Ed25519PublicKey,
    signed_seen: bool,
) -> str | None:
    if row.seq != seq:
        return f"event {seq} is missing (next stored event is {row.seq})"
    if row.prev_hash != expected_prev:
        return "its previous-hash link does not match the event before it"
    if chain_hash(row.prev_hash, row.body) != row.hash:
        return "its content does not match its hash (edited)"
    try:
        body = json.loads(row.body)
    except ValueError:
        return "its body is not JSON"
    copies = {
        "seq": row.seq,
        "time": row.time,
        "operation": row.operation,
        "actor_key_id": row.actor_key_id,
        "collection_id": row.collection_id,
    }
    if not isinstance(body, dict) or any(body.get(k) != v for k, v in copies.items()):
        return "its indexed columns disagree with its hashed body"
    if row.signature is None:
        # Ledgers written before events were signed one by one have an unsigned prefix; an
        # unsigned event after a signed one was added by someone without the key.
        return (
            "it is not signed, though events before it are (added without the key)"
            if (signed_seen)
            else None
        )
    if not signature_valid(public_key, head_message(row.seq, row.hash), row.signature):
        return "its signature is not valid for the key (added or rewritten without the key)"
    return None


@dataclass(frozen=True)
class EventFilter:
    """Which events to list: each field given must match (times are ISO 8601, UTC)."""

    operation: str | None = None
    actor_key_id: str | None = None
    collection_id: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive

    def where(self, query: Select[Any]) -> Select[Any]:
        row = LedgerEventRow
        for column, value in (
            (row.operation, self.operation),
            (row.actor_key_id, self.actor_key_id),
            (row.collection_id, self.collection_id),
        ):
            if value is not None:
                query = query.where(column == value)
        # Times are stored as fixed-width ISO text in UTC, so text order is time order.
        if self.since is not None:
            query = query.where(row.time >= _stamp(self.since))
        if self.until is not None:
            query = query.where(row.time < _stamp(self.until))
        if self.outcome is not None:  # narrowed in SQL, confirmed on the parsed body
            query = query.where(row.body.contains(f'"outcome":{json.dumps(self.outcome)}'))
        return query

    def matches(self, event: dict[str, Any]) -> bool:
        return self.outcome is None or event.get("outcome") == self.outcome


def _stamp(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
    except OverflowError:  # the zone pushed it past year 1 or 9999: before or after everything
        edge = dt.datetime.min if moment.year < 5000 else dt.datetime.max
        return edge.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")


def export_events(
    session: Session, after: int = 0, limit: int | None = None, only: EventFilter | None = None
) -> Iterator[dict]:
    """Events after ``after`` (those ``only`` selects) with their chain fields, oldest first
    (for JSON Lines)."""
    query = select(LedgerEventRow).where(LedgerEventRow.seq > after)
    if only is not None:
        query = only.where(query)
    query = query.order_by(LedgerEventRow.seq)
    if limit is not None:
        query = query.limit(limit)
    for row in session.scalars(query):
        item = _exported(row)
        if only is None or only.matches(item["event"]):
            yield item


def events_page(
    session: Session, after: int, limit: int, only: EventFilter
) -> tuple[list[dict], int | None]:
    """Up to ``limit`` events after ``after`` that ``only`` selects, and the sequence number to
    ask after for the next page (None at the end)."""
    query = select(LedgerEventRow).where(LedgerEventRow.seq > after)
    rows = list(session.scalars(only.where(query).order_by(LedgerEventRow.seq).limit(limit)))
    items = [_exported(row) for row in rows]
    chosen = [item for item in items if only.matches(item["event"])]
    return chosen, (rows[-1].seq if len(rows) == limit else None)


def _exported(row: LedgerEventRow) -> dict[str, Any]:
    item = {"event": json.loads(row.body), "prev_hash": row.prev_hash, "hash": row.hash}
    if row.signature is not None:
        item["signature"] = row.signature
    return item


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
