"""Use policies in the service: which policy a caller acts under, the check every biometric use
case makes first, and the admin use cases that manage policies (each change on the ledger)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    NotFoundError,
    PolicyViolation,
)
from faceledger.governance.policies import DEFAULT_POLICIES, Decision, Policy, Stated, decide
from faceledger.service.common import Request, refusals_recorded
from faceledger.service.context import Services
from faceledger.store.schema import ApiKeyRow, PolicyRow, utcnow


def get_policy(services: Services, name: str) -> Policy:
    """A policy by name: an admin-defined one, or a shipped default."""
    with services.db.read() as session:
        row = session.get(PolicyRow, name)
    if row is not None:
        return Policy.from_json(row.definition)
    if name in DEFAULT_POLICIES:
        return DEFAULT_POLICIES[name]
    raise NotFoundError(f"no policy named {name!r}")


def policy_for(services: Services, request: Request) -> Policy:
    return get_policy(services, request.actor.policy or services.settings.default_policy)


def enforce(
    services: Services,
    request: Request,
    operation: str,
    *,
    collection_id: str | None = None,
    threshold: float | None = None,
    max_results: int | None = None,
) -> Decision:
    """Check a biometric use against the caller's policy before any work is done. A refusal
    is recorded on the ledger and raised as PolicyViolation."""
    policy = policy_for(services, request)
    stated = Stated(request.purpose, request.case, request.legal_basis)
    with refusals_recorded(services, request, operation, "policy", PolicyViolation):
        return decide(
            policy,
            operation,
            stated,
            collection_id=collection_id,
            threshold=threshold,
            max_results=max_results,
        )


def all_policies(session: Session) -> dict[str, Policy]:
    """Every policy by name: the shipped defaults (or their stored replacements) first, then
    admin-defined ones by name."""
    stored = {r.name: Policy.from_json(r.definition) for r in session.scalars(select(PolicyRow))}
    return {**DEFAULT_POLICIES, **dict(sorted(stored.items()))}


def list_policies(services: Services, request: Request) -> list[Policy]:
    request.actor.require("collections:read")
    with services.db.read() as session:
        return list(all_policies(session).values())


def put_policy(
    services: Services, request: Request, definition: dict, *, create: bool = False
) -> Policy:
    """Create a policy, or replace one (a shipped default can be replaced: the stored version
    then wins until it is deleted)."""
    request.actor.require("policies:manage")
    policy = Policy.from_json(definition)
    with services.write_lock, services.db.write() as session:
        row = session.get(PolicyRow, policy.name)
        if create and (row is not None or policy.name in DEFAULT_POLICIES):
            raise AlreadyExistsError(f"policy {policy.name!r} already exists")
        previous = row.definition if row is not None else None
        if row is None:
            row = PolicyRow(name=policy.name, definition={}, updated_by=request.actor.key_id)
            session.add(row)
        row.definition = policy.to_json()
        row.updated_at = utcnow()
        row.updated_by = request.actor.key_id
        services.ledger.append(
            session,
            request.event(
                "PutPolicy",
                parameters={"policy": policy.to_json(), "previous": previous},
            ),
        )
    return policy


def delete_policy(services: Services, request: Request, name: str) -> None:
    """Delete an admin-defined policy (a replaced default reverts to the shipped one). A policy
    that keys are bound to cannot be deleted."""
    request.actor.require("policies:manage")
    with services.write_lock, services.db.write() as session:
        row = session.get(PolicyRow, name)
        if row is None:
            if name in DEFAULT_POLICIES:
                raise InvalidParameterError(f"{name!r} is a shipped default; it cannot be deleted")
            raise NotFoundError(f"no policy named {name!r}")
        bound = session.scalar(
            select(func.count())
            .select_from(ApiKeyRow)
            .where(ApiKeyRow.policy == name, ApiKeyRow.revoked_at.is_(None))
        )
        if bound and name not in DEFAULT_POLICIES:
            raise InvalidParameterError(f"{bound} active key(s) use policy {name!r}; rebind them")
        session.delete(row)
        services.ledger.append(session, request.event("DeletePolicy", parameters={"policy": name}))


def check_policy_name(services: Services, name: str | None) -> str | None:
    """For binding a key: the policy must exist."""
    if name is not None:
        get_policy(services, name)
    return name
