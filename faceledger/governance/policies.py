"""Use policies: what a key may do with faces, on which collections, under which rules.

Every API key is bound to one policy. A biometric use (indexing, searching, comparing,
detecting) is checked against it before any work is done: the operation and the collection must
be allowed, the threshold must reach the policy's floor (or is raised to it, if the policy says
so), the number of results is capped, and the request must state what the policy requires
(purpose, case or reference number, legal basis). Refusals are :class:`PolicyViolation` errors
that say which rule failed and how to comply.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from faceledger.errors import InvalidParameterError, PolicyViolation


class LegalBasis(StrEnum):
    CONSENT = "consent"
    WARRANT = "warrant"
    COURT_ORDER = "court_order"
    EXIGENT_CIRCUMSTANCES = "exigent_circumstances"
    NONE = "none"


# The uses of faces a policy governs. Listing, deleting and collection management are governed
# by roles alone: they do not look at anyone's face.
OPERATIONS = (
    "index_faces",
    "search_faces",
    "search_faces_by_image",
    "search_users",
    "search_users_by_image",
    "associate_faces",
    "compare_faces",
    "detect_faces",
    "search_video",  # a collection searched with the people of a stored video
    "watch_stream",  # a live camera or stream watched for a collection's people
)
# No shipped policy allows a live watch: only an admin-defined policy that names its legal
# basis and review requirement can.
PHOTO_LIBRARY_OPERATIONS = tuple(op for op in OPERATIONS if op != "watch_stream")
ONE_TO_MANY = frozenset(
    {"search_faces", "search_faces_by_image", "search_users", "search_users_by_image"}
)
POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Retention:
    """How long things are kept, in days (None: no limit set by this policy)."""

    faces_after_last_use_days: int | None = None
    search_records_days: int | None = None
    review_records_days: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    operations: tuple[str, ...]
    collections: tuple[str, ...] = ("*",)  # shell-style patterns
    min_threshold: float = 80.0
    raise_to_floor: bool = False  # below the floor: raise the threshold instead of refusing
    max_results: int = 100
    require_purpose: bool = False
    require_case: bool = False
    legal_bases: tuple[LegalBasis, ...] = (LegalBasis.CONSENT,)  # the request's must be one
    require_legal_basis: bool = False  # the request must state it (else the first is assumed)
    consent_required_to_index: bool = False
    reviewers_required: int = 0  # 0: no human review; 2: two different reviewers must agree
    live_streams: bool = False
    retention: Retention = field(default_factory=Retention)
    results_are: str = "candidates for human review, never identifications"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        try:
            values = dict(data)
            values["operations"] = tuple(values.get("operations", ()))
            values["collections"] = tuple(values.get("collections", ("*",)))
            values["legal_bases"] = tuple(
                LegalBasis(b) for b in values.get("legal_bases", ("consent",))
            )
            values["retention"] = Retention(**(values.get("retention") or {}))
            policy = cls(**values)
        except (TypeError, ValueError) as error:
            raise InvalidParameterError(f"not a valid policy: {error}") from None
        policy.validate()
        return policy

    def validate(self) -> None:
        if not POLICY_NAME.match(self.name):
            raise InvalidParameterError(
                "a policy name is 1-63 lowercase letters, digits and '-', starting with either"
            )
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown:
            raise InvalidParameterError(
                f"unknown operations {sorted(unknown)}; known: {', '.join(OPERATIONS)}"
            )
        if not 0 <= self.min_threshold <= 100:
            raise InvalidParameterError("min_threshold is a similarity between 0 and 100")
        if not 1 <= self.max_results <= 4096:
            raise InvalidParameterError("max_results must be between 1 and 4096")
        if self.reviewers_required not in (0, 1, 2, 3):
            raise InvalidParameterError("reviewers_required is 0 (no review) to 3")
        if not self.legal_bases:
            raise InvalidParameterError("a policy names at least one legal basis")
        if "watch_stream" in self.operations and not (
            self.require_legal_basis and self.reviewers_required >= 1
        ):
            raise InvalidParameterError(
                "a policy that allows watch_stream (live watching) must require a stated legal "
                "basis (require_legal_basis) and human review (reviewers_required of 1 or more)"
            )
        for days in asdict(self.retention).values():
            if days is not None and not 1 <= days <= 36500:
                raise InvalidParameterError("retention periods are 1 to 36500 days")

    @property
    def consent_based(self) -> bool:
        return self.legal_bases == (LegalBasis.CONSENT,)


@dataclass(frozen=True)
class Stated:
    """What a request says about itself."""

    purpose: str | None = None
    case: str | None = None
    legal_basis: str | None = None


@dataclass(frozen=True)
class Decision:
    """What the policy allows for one request."""

    policy: str
    threshold: float | None
    max_results: int | None
    legal_basis: LegalBasis
    reviewers_required: int
    threshold_raised: bool = False
    consent_required_to_enrol: bool = False


def decide(
    policy: Policy,
    operation: str,
    stated: Stated,
    *,
    collection_id: str | None = None,
    threshold: float | None = None,
    max_results: int | None = None,
) -> Decision:
    """Check one use against ``policy``; raise PolicyViolation naming the rule it breaks."""
    prefix = f"policy {policy.name!r}"
    if operation not in policy.operations:
        allowed = ", ".join(policy.operations) or "nothing"
        raise PolicyViolation(f"{prefix} does not allow {operation} (it allows: {allowed})")
    if collection_id is not None and not any(
        fnmatch.fnmatchcase(collection_id, pattern) for pattern in policy.collections
    ):
        raise PolicyViolation(
            f"{prefix} does not cover collection {collection_id!r} "
            f"(it covers: {', '.join(policy.collections)})"
        )
    if policy.require_purpose and not (stated.purpose or "").strip():
        raise PolicyViolation(f"{prefix} requires a stated purpose for {operation}")
    if policy.require_case and not (stated.case or "").strip():
        raise PolicyViolation(
            f"{prefix} requires a case or reference number for {operation} "
            "(field 'case', header X-Faceledger-Case, or the key's --case)"
        )
    basis = _legal_basis(policy, stated, prefix)
    effective, raised = threshold, False
    if threshold is not None and threshold < policy.min_threshold:
        if not policy.raise_to_floor:
            raise PolicyViolation(
                f"{prefix} sets a similarity floor of {policy.min_threshold:g}; "
                f"a threshold of {threshold:g} is below it"
            )
        effective, raised = policy.min_threshold, True
    capped = None if max_results is None else min(max_results, policy.max_results)
    return Decision(
        policy.name,
        effective,
        capped,
        basis,
        policy.reviewers_required,
        raised,
        policy.consent_required_to_index,
    )


def _legal_basis(policy: Policy, stated: Stated, prefix: str) -> LegalBasis:
    allowed = ", ".join(b.value for b in policy.legal_bases)
    if not stated.legal_basis:
        if policy.require_legal_basis:
            raise PolicyViolation(
                f"{prefix} requires a stated legal basis (one of: {allowed}; field "
                "'legal_basis' or header X-Faceledger-Legal-Basis)"
            )
        return policy.legal_bases[0]
    try:
        basis = LegalBasis(stated.legal_basis)
    except ValueError:
        raise PolicyViolation(
            f"unknown legal basis {stated.legal_basis!r}; one of: "
            + ", ".join(b.value for b in LegalBasis)
        ) from None
    if basis not in policy.legal_bases:
        raise PolicyViolation(f"{prefix} accepts the legal bases {allowed}, not {basis.value}")
    return basis


DEFAULT_POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy(
            name="photo-library",
            description="Organising one's own photos with the consent of the people in them: "
            "1:N search over the key's collections, in photos and stored videos. Thresholds "
            "below 80 are raised to 80.",
            operations=PHOTO_LIBRARY_OPERATIONS,
            min_threshold=80.0,
            raise_to_floor=True,
            max_results=100,
            legal_bases=(LegalBasis.CONSENT,),
            consent_required_to_index=True,
            retention=Retention(faces_after_last_use_days=3 * 365, search_records_days=365),
        ),
        Policy(
            name="access-control",
            description="Letting enrolled, consenting people through a door: 1:1 comparison "
            "and search among enrolled users only, floor 95.",
            operations=(
                "index_faces",
                "associate_faces",
                "compare_faces",
                "search_users",
                "search_users_by_image",
                "detect_faces",
            ),
            min_threshold=95.0,
            max_results=5,
            legal_bases=(LegalBasis.CONSENT,),
            consent_required_to_index=True,
            retention=Retention(faces_after_last_use_days=365, search_records_days=90),
        ),
        Policy(
            name="investigative-lead",
            description="Generating investigative leads under legal authority: 1:N search with "
            "a floor of 99, a case number and a legal basis on every request, and two-person "
            "review. Results are leads, never identifications, and never grounds for action "
            "on their own.",
            operations=(
                "index_faces",
                "search_faces",
                "search_faces_by_image",
                "search_users",
                "search_users_by_image",
                "detect_faces",
                "search_video",
            ),
            min_threshold=99.0,
            max_results=10,
            require_purpose=True,
            require_case=True,
            legal_bases=(
                LegalBasis.WARRANT,
                LegalBasis.COURT_ORDER,
                LegalBasis.EXIGENT_CIRCUMSTANCES,
            ),
            require_legal_basis=True,
            reviewers_required=2,
            retention=Retention(search_records_days=3 * 365, review_records_days=3 * 365),
            results_are="investigative leads pending two-person review; never identifications",
        ),
    )
}
