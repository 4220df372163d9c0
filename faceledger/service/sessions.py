"""Console sessions: an API key exchanged for a browser session at sign-in.

The browser holds a random session token in an HttpOnly cookie; the database keeps its SHA-256,
the key it stands for and the session's CSRF token. Every request looks the key up again, so a
revoked key ends its sessions at once, and a session unused for ``console_idle_minutes`` is gone.
Signing in and out are on the ledger; a refused sign-in is a refused attempt like any other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete

from faceledger.errors import AuthenticationError
from faceledger.service.auth import Actor, Role, authenticate
from faceledger.service.common import Request, record_refusal
from faceledger.service.context import Services
from faceledger.store.schema import ApiKeyRow, ConsoleSessionRow, as_utc, utcnow


@dataclass(frozen=True)
class ConsoleSession:
    actor: Actor
    csrf_token: str


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie; shown to nobody else
    session: ConsoleSession


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(services: Services, api_key: str, address: str | None = None) -> SignedIn:
    """A session for the holder of ``api_key`` (a bearer key; AWS keys sign requests only)."""
    try:
        actor = authenticate(services.db, api_key.strip() or None)
    except AuthenticationError as error:
        claimed = api_key.strip().partition(".")[0][:64]
        record_refusal(
            services, claimed, "unknown", "ConsoleSignIn", error.message, "credentials", address
        )
        raise
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    cutoff = utcnow() - dt.timedelta(minutes=services.settings.console_idle_minutes)
    with services.write_lock, services.db.write() as session:
        # Sessions left idle are swept here, so the table never grows without bound.
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.last_seen_at < cutoff))
        session.add(
            ConsoleSessionRow(token_sha256=_digest(token), key_id=actor.key_id, csrf_token=csrf)
        )
        services.ledger.append(
            session,
            Request(actor).event("ConsoleSignIn", parameters={"address": address}),
        )
    return SignedIn(token, ConsoleSession(actor, csrf))


def current_session(services: Services, token: str | None) -> ConsoleSession | None:
    """The session a cookie stands for; None when it is unknown, idle too long, or its key
    was revoked (the session is then deleted)."""
    if not token:
        return None
    now = utcnow()
    idle = dt.timedelta(minutes=services.settings.console_idle_minutes)
    with services.db.read() as session:
        row = session.get(ConsoleSessionRow, _digest(token))
        key = session.get(ApiKeyRow, row.key_id) if row is not None else None
    if row is None:
        return None
    if key is None or key.revoked_at is not None or now - as_utc(row.last_seen_at) > idle:
        _forget(services, token)
        return None
    if now - as_utc(row.last_seen_at) > dt.timedelta(seconds=30):  # not a write per request
        with services.write_lock, services.db.write() as session:
            stored = session.get(ConsoleSessionRow, _digest(token))
            if stored is not None:
                stored.last_seen_at = now
    actor = Actor(key.key_id, Role(key.role), key.name, key.policy)
    return ConsoleSession(actor, row.csrf_token)


def sign_out(services: Services, token: str) -> None:
    current = current_session(services, token)
    _forget(services, token)
    if current is not None:
        with services.write_lock, services.db.write() as session:
            services.ledger.append(session, Request(current.actor).event("ConsoleSignOut"))


def _forget(services: Services, token: str) -> None:
    with services.write_lock, services.db.write() as session:
        session.execute(
            delete(ConsoleSessionRow).where(ConsoleSessionRow.token_sha256 == _digest(token))
        )
