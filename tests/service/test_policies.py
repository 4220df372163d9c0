"""The policy matrix: each shipped policy x each operation x missing fields x thresholds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from faceledger.errors import InvalidParameterError, PolicyViolation
from faceledger.governance.policies import (
    DEFAULT_POLICIES,
    OPERATIONS,
    LegalBasis,
    Policy,
    Stated,
    decide,
)

# What each shipped policy is for, written out so a change to the defaults shows up here.
ALLOWED = {
    # No shipped policy allows a live watch (watch_stream).
    "photo-library": set(OPERATIONS) - {"watch_stream"},
    "access-control": {
        "index_faces",
        "associate_faces",
        "compare_faces",
        "search_users",
        "search_users_by_image",
        "detect_faces",
    },
    "investigative-lead": {
        "index_faces",
        "search_faces",
        "search_faces_by_image",
        "search_users",
        "search_users_by_image",
        "detect_faces",
        "search_video",
    },
}
FLOORS = {"photo-library": 80, "access-control": 95, "investigative-lead": 99}
REQUIRED = {
    "photo-library": set(),
    "access-control": set(),
    "investigative-lead": {"purpose", "case", "legal_basis"},
}


def complete(policy: Policy) -> Stated:
    return Stated(purpose="why", case="C-2026-17", legal_basis=policy.legal_bases[0].value)


@pytest.mark.parametrize("name", sorted(DEFAULT_POLICIES))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_allowed_or_refused(name: str, operation: str) -> None:
    policy = DEFAULT_POLICIES[name]
    if operation not in ALLOWED[name]:
        with pytest.raises(PolicyViolation, match=f"does not allow {operation}"):
            decide(policy, operation, complete(policy))
        return
    decision = decide(
        policy, operation, complete(policy), collection_id="c", threshold=99.5, max_results=4096
    )
    assert decision.policy == name and decision.threshold == 99.5
    assert decision.max_results == policy.max_results  # capped, not refused
    assert decision.reviewers_required == (2 if name == "investigative-lead" else 0)


@pytest.mark.parametrize("name", sorted(DEFAULT_POLICIES))
@pytest.mark.parametrize("missing", ["purpose", "case", "legal_basis"])
def test_missing_fields(name: str, missing: str) -> None:
    policy = DEFAULT_POLICIES[name]
    stated = replace(complete(policy), **{missing: None})
    operation = "detect_faces"
    if missing in REQUIRED[name]:
        with pytest.raises(PolicyViolation, match=missing.replace("_", " ")):
            decide(policy, operation, stated)
    else:
        decision = decide(policy, operation, stated)
        assert decision.legal_basis == policy.legal_bases[0]  # the policy's own, when unstated


@pytest.mark.parametrize("name", sorted(DEFAULT_POLICIES))
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_threshold_below_the_floor(name: str, operation: str) -> None:
    policy = DEFAULT_POLICIES[name]
    if operation not in ALLOWED[name]:
        return  # refused whatever the threshold (above)
    floor = FLOORS[name]
    assert policy.min_threshold == floor
    at_floor = decide(policy, operation, complete(policy), threshold=floor)
    assert at_floor.threshold == floor and not at_floor.threshold_raised
    if policy.raise_to_floor:
        raised = decide(policy, operation, complete(policy), threshold=floor - 30)
        assert raised.threshold == floor and raised.threshold_raised
    else:
        with pytest.raises(PolicyViolation, match=f"floor of {floor}; a threshold of 94.9"):
            decide(policy, operation, complete(policy), threshold=94.9)


@pytest.mark.parametrize("name", sorted(DEFAULT_POLICIES))
def test_a_legal_basis_the_policy_does_not_accept(name: str) -> None:
    policy = DEFAULT_POLICIES[name]
    other = next(b for b in LegalBasis if b not in policy.legal_bases)
    with pytest.raises(PolicyViolation, match="accepts the legal bases"):
        decide(policy, "detect_faces", replace(complete(policy), legal_basis=other.value))
    with pytest.raises(PolicyViolation, match="unknown legal basis"):
        decide(policy, "detect_faces", replace(complete(policy), legal_basis="vibes"))


def test_collections_are_matched_by_pattern() -> None:
    policy = replace(DEFAULT_POLICIES["photo-library"], collections=("family-*",))
    assert decide(policy, "search_faces", Stated(), collection_id="family-2026").policy
    with pytest.raises(PolicyViolation, match="does not cover collection 'work'"):
        decide(policy, "search_faces", Stated(), collection_id="work")


def test_policies_round_trip_and_are_validated() -> None:
    for policy in DEFAULT_POLICIES.values():
        assert Policy.from_json(policy.to_json()) == policy
    base = DEFAULT_POLICIES["photo-library"].to_json()
    for bad in (
        {"name": "Bad Name"},
        {"operations": ["search_faces", "mind_reading"]},
        {"min_threshold": 120},
        {"reviewers_required": 7},
        {"legal_bases": []},
        {"retention": {"search_records_days": 0}},
        {"unexpected": 1},
    ):
        with pytest.raises(InvalidParameterError):
            Policy.from_json({**base, **bad})
