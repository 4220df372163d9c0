"""The accountability report (RCW 43.386.020-style): what the system was used for in a period,
under which rules, what came of it, and how accurate and fair it is measured to be.

Every figure is computed from the ledger's events (and the review records they point to), so
anyone holding the ledger export can recompute it. Pure functions: the service gathers inputs.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

USES = {
    "IndexFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "SearchUsers",
    "SearchUsersByImage",
    "CompareFaces",
    "DetectFaces",
    "AssociateFaces",
}
# A video search's candidates are recorded when its job ends (GetFaceSearch); a live watch's
# with each alert (WatchAlert). Their starts are uses too.
SEARCHES = {
    "SearchFaces",
    "SearchFacesByImage",
    "SearchUsers",
    "SearchUsersByImage",
    "GetFaceSearch",
    "WatchAlert",
}
USES |= SEARCHES | {"StartFaceDetection", "StartFaceSearch", "WatchStarted"}


def build_report(
    events: list[dict[str, Any]],
    *,
    period: tuple[str, str],
    policies: list[dict[str, Any]],
    reviews: list[dict[str, Any]],
    verification: dict[str, Any],
    audit: dict[str, Any] | None,
    generated_at: str,
) -> dict[str, Any]:
    """``events``: ledger event bodies within the period. ``reviews``: review tasks created in
    the period, each with its candidates and decisions (see service.review.ReviewTask)."""
    uses = [e for e in events if e["operation"] in USES and e.get("outcome", "ok") == "ok"]
    searches = [e for e in uses if e["operation"] in SEARCHES]
    refused = [e for e in events if e.get("outcome") == "refused"]
    returned = [len(e.get("results", {}).get("matches", [])) for e in searches]
    return {
        "period": {"from": period[0], "to": period[1]},
        "generated_at": generated_at,
        "uses": {
            "total": len(uses),
            "by_operation": _count(e["operation"] for e in uses),
            "by_policy": _count(_policy(e) for e in uses),
            "by_purpose": _count(e.get("purpose") or "(none stated)" for e in uses),
            "by_legal_basis": _count(
                e.get("parameters", {}).get("legal_basis") or "(not recorded)" for e in uses
            ),
        },
        "results": {
            "searches": len(searches),
            "searches_with_candidates": sum(1 for n in returned if n),
            "candidates_returned": sum(returned),
            "thresholds_applied": _count(_threshold(e) for e in searches),
            "thresholds_raised_to_floor": sum(1 for e in searches if _raised(e)),
        },
        "review": _review_summary(reviews),
        "policies_in_force": [
            {
                "name": p["name"],
                "floor": p["min_threshold"],
                "raise_to_floor": p["raise_to_floor"],
                "max_results": p["max_results"],
                "reviewers_required": p["reviewers_required"],
                "legal_bases": p["legal_bases"],
                "requires": [
                    k
                    for k, on in (
                        ("purpose", p["require_purpose"]),
                        ("case", p["require_case"]),
                        ("legal basis", p["require_legal_basis"]),
                        ("consent to enrol", p["consent_required_to_index"]),
                    )
                    if on
                ],
                "retention": p["retention"],
            }
            for p in policies
        ],
        "policy_changes": [
            {
                "seq": e["seq"],
                "time": e["time"],
                "operation": e["operation"],
                "by": e["actor_key_id"],
            }
            for e in events
            if e["operation"] in ("PutPolicy", "DeletePolicy", "BindKeyPolicy")
        ],
        "retention_and_erasure": {
            "retention_runs": sum(1 for e in events if e["operation"] == "RetentionRun"),
            "faces_deleted_by_retention": sum(
                len(ids)
                for e in events
                if e["operation"] == "RetentionRun"
                for ids in e.get("results", {}).get("deleted_faces", {}).values()
            ),
            "review_tasks_deleted_by_retention": sum(
                len(e.get("results", {}).get("deleted_review_tasks", []))
                for e in events
                if e["operation"] == "RetentionRun"
            ),
            "erasures": sum(1 for e in events if e["operation"] == "EraseSubject"),
            "faces_erased": sum(
                e.get("results", {}).get("faces", 0)
                for e in events
                if e["operation"] == "EraseSubject"
            ),
        },
        "refused": {
            # Repeated refusals are aggregated into one event with their count.
            "total": sum(_times(e) for e in refused),
            "by_kind": _weighted((_refusal_kind(e), _times(e)) for e in refused),
            "by_operation": _weighted((e["operation"], _times(e)) for e in refused),
        },
        "ledger": verification,
        "accuracy_and_fairness": _audit_summary(audit),
    }


def _count(items: Any) -> dict[str, int]:
    return dict(Counter(str(i) for i in items).most_common())


def _weighted(pairs: Any) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for key, n in pairs:
        counts[str(key)] += n
    return dict(counts.most_common())


def _times(event: dict[str, Any]) -> int:
    count = event.get("results", {}).get("count", 1)
    return count if isinstance(count, int) and count > 0 else 1


def _threshold(event: dict[str, Any]) -> str:
    """One format whichever interface recorded it (80 and 80.0 are the same threshold)."""
    parameters = event.get("parameters", {})
    value = parameters.get("threshold", parameters.get("user_match_threshold"))
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "None"


def _raised(event: dict[str, Any]) -> bool:
    requested = event.get("parameters", {}).get("threshold_requested")
    applied = _threshold(event)
    return requested is not None and applied != "None" and requested < float(applied)


def _policy(event: dict[str, Any]) -> str:
    return event.get("parameters", {}).get("policy") or "(not recorded)"


def _refusal_kind(event: dict[str, Any]) -> str:
    results = event.get("results", {})
    if results.get("kind"):
        return str(results["kind"])
    reason = str(results.get("reason", ""))  # events recorded before refusals had a kind
    if reason.startswith("policy ") or "policy '" in reason or "legal basis" in reason:
        return "policy"
    if "role" in reason:
        return "role"
    return "credentials"


def _review_summary(reviews: list[dict[str, Any]]) -> dict[str, Any]:
    candidates = [c for r in reviews for c in r["candidates"]]
    statuses = Counter(c["status"] for c in candidates)
    hours = []
    for task in reviews:
        created = task["created_at"]
        for candidate in task["candidates"]:
            if candidate["status"] == "unconfirmed":
                continue
            decided = [
                d["decided_at"] for d in task["decisions"] if d["face_id"] == candidate["face_id"]
            ]
            if decided:
                hours.append((max(decided) - created).total_seconds() / 3600)
    total = len(candidates) or 1
    return {
        "tasks": len(reviews),
        "open_tasks": sum(1 for r in reviews if r["status"] == "open"),
        "candidates": len(candidates),
        "confirmed": statuses.get("confirmed", 0),
        "rejected": statuses.get("rejected", 0),
        "awaiting": statuses.get("unconfirmed", 0),
        "confirmed_share": round(statuses.get("confirmed", 0) / total, 4),
        "rejected_share": round(statuses.get("rejected", 0) / total, 4),
        "hours_to_decision_median": round(statistics.median(hours), 3) if hours else None,
        "hours_to_decision_max": round(max(hours), 3) if hours else None,
    }


def _audit_summary(audit: dict[str, Any] | None) -> dict[str, Any] | None:
    if not audit:
        return None

    def rate(entry: dict[str, Any], metric: str, threshold: str) -> float | None:
        value = entry.get(metric, {}).get(threshold, {})
        return value.get("value") if isinstance(value, dict) else None

    groups = audit.get("by_gender", []) + audit.get("by_race", [])
    return {
        "audit_created": audit.get("created"),
        "lfw_accuracy": audit.get("verification", {}).get("accuracy_mean"),
        "overall_fmr": {t: rate(audit["overall"], "fmr", t) for t in ("80", "95", "99")},
        "overall_fnmr": {t: rate(audit["overall"], "fnmr", t) for t in ("80", "95", "99")},
        "by_group_at_80": {
            g["group"]: {"fmr": rate(g, "fmr", "80"), "fnmr": rate(g, "fnmr", "80")} for g in groups
        },
        "worst_group_thresholds": {
            fmr: {"threshold": entry.get("threshold"), "set_by": entry.get("worst_group")}
            for fmr, entry in audit.get("worst_group_calibration", {}).items()
        },
        "limits": audit.get("limits", []),
    }
