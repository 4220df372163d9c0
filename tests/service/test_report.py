"""The accountability report's arithmetic on hand-written ledger events (the API test checks
it against a real ledger)."""

from __future__ import annotations

from faceledger.governance.report import build_report


def event(seq: int, operation: str, parameters: dict, results: dict, outcome: str = "ok") -> dict:
    return {
        "seq": seq,
        "time": "2026-11-22T10:00:00+00:00",
        "operation": operation,
        "actor_key_id": "k",
        "actor_role": "operator",
        "purpose": None,
        "parameters": parameters,
        "results": results,
        "outcome": outcome,
    }


def test_raised_thresholds_are_counted_for_face_and_user_searches() -> None:
    events = [
        event(
            1,
            "SearchFaces",
            {"threshold": 99, "threshold_requested": 99, "policy": "p"},
            {"matches": [["f", 99.5]]},
        ),
        event(
            2,
            "SearchUsers",
            {"user_match_threshold": 80, "threshold_requested": 50, "policy": "q"},
            {"matches": []},
        ),
        event(
            3,
            "SearchFacesByImage",
            {"threshold": 80, "threshold_requested": 20, "policy": "q"},
            {"matches": [["a", 90], ["b", 85]]},
        ),
        event(
            4,
            "index_faces",
            {},
            {"reason": "policy 'q' requires consent", "kind": "policy"},
            "refused",
        ),
    ]
    report = build_report(
        events,
        period=("a", "b"),
        policies=[],
        reviews=[],
        verification={"ok": True},
        audit=None,
        generated_at="now",
    )
    assert report["uses"]["total"] == 3 and report["uses"]["by_policy"] == {"q": 2, "p": 1}
    assert report["results"]["thresholds_raised_to_floor"] == 2
    assert report["results"]["thresholds_applied"] == {"80": 2, "99": 1}
    assert report["results"]["candidates_returned"] == 3
    assert report["results"]["searches_with_candidates"] == 2
    assert report["refused"] == {
        "total": 1,
        "by_kind": {"policy": 1},
        "by_operation": {"index_faces": 1},
    }
    assert report["review"]["tasks"] == 0 and report["review"]["hours_to_decision_median"] is None
