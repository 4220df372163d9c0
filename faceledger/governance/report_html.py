"""The accountability report as a page someone could hand to a city council: plain labels,
whole numbers, one number format, empty states said in words. Reads the report's JSON (see
``report.build_report``), which stays as it is for machines."""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Iterable
from enum import Enum
from typing import Any

from faceledger.charts import bar_chart

REFUSAL_KINDS = {
    "credentials": "No key, or a key the server does not know",
    "role": "The key's role may not do this",
    "policy": "Refused by the key's use policy",
    "rule": "Broke a rule (e.g. reviewing one's own search, deciding twice)",
    "throttled": "Too many refusals from one address",
}
GROUPS = {
    "F": "Women",
    "M": "Men",
    "caucasian": "Labelled Caucasian",
    "african": "Labelled African",
    "eastasian": "Labelled East Asian",
    "asianindian": "Labelled Asian Indian",
    "latino": "Labelled Latino",
}
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;
max-width:58em;margin:2em auto;padding:0 1em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #d0d7de;
padding-bottom:.2em}h3{margin-bottom:.3em}.lede{color:#57606a}
table{border-collapse:collapse;margin:.4em 0 1em}th,td{padding:4px 10px;text-align:left;
vertical-align:top}th{background:#eef1f4;font-weight:600}tr:nth-child(even) td{background:#f7f8fa}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}.card{border:1px solid #d0d7de;
border-radius:6px;padding:.6em 1em;min-width:9em}.card b{display:block;font-size:1.6em}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.empty{color:#57606a;font-style:italic}
code{font-size:.9em;background:#f3f4f6;padding:0 .25em;border-radius:3px;white-space:nowrap}
"""


def render_html(report: dict[str, Any]) -> str:
    uses, results, review = report["uses"], report["results"], report["review"]
    refused, ledger = report["refused"], report["ledger"]
    start, end = _period(report["period"])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Accountability report, {start} to {end}</title><style>{STYLE}</style>",
        "</head><body>",
        "<h1>Accountability report</h1>",
        f"<p class='lede'>Uses of face recognition from {start} to {end} (UTC, both days "
        f"included). Generated {_when(report['generated_at'])}. Every figure is computed from "
        "the tamper-evident ledger. Search results are candidates for a person to review, "
        "never identifications.</p>",
        _cards(
            [
                ("Uses", _int(uses["total"])),
                ("Searches", _int(results["searches"])),
                ("Candidates returned", _int(results["candidates_returned"])),
                ("Candidates confirmed by review", _int(review["confirmed"])),
                ("Refused requests", _int(refused["total"])),
                ("Ledger", "verified" if ledger.get("ok") else "FAILED"),
            ]
        ),
        "<h2>Uses</h2>",
        _counts("Operation", uses["by_operation"], _operation, "No uses in this period."),
        _chart("Uses by operation", uses["by_operation"], _operation),
        "<h3>By use policy</h3>",
        _counts("Policy", uses["by_policy"], _not_recorded, "No uses in this period."),
        "<h3>By stated purpose</h3>",
        _counts("Purpose", uses["by_purpose"], _not_recorded, "No uses in this period."),
        "<h3>By legal basis</h3>",
        _counts("Legal basis", uses["by_legal_basis"], _words, "No uses in this period."),
        "<h2>Search results</h2>",
        _rows(
            [
                ("Searches", _int(results["searches"])),
                ("Searches that returned candidates", _int(results["searches_with_candidates"])),
                ("Candidates returned", _int(results["candidates_returned"])),
                (
                    "Searches whose threshold was raised to the policy's floor",
                    _int(results["thresholds_raised_to_floor"]),
                ),
            ]
        ),
        "<h3>Similarity thresholds applied</h3>",
        _counts(
            "Threshold (similarity, 0-100)",
            results["thresholds_applied"],
            lambda t: t if t not in ("None", "") else "not recorded",
            "No searches in this period.",
        ),
        "<h2>Human review</h2>",
        _review(review),
        "<h2>Use policies in force</h2>",
        _policies(report["policies_in_force"]),
        "<h3>Changes to policies and key bindings in this period</h3>",
        _changes(report["policy_changes"]),
        "<h2>Retention and erasure</h2>",
        _retention(report["retention_and_erasure"]),
        "<h2>Refused requests</h2>",
        "<p>Every refused attempt is on the ledger; repeats from one address within a minute "
        "are counted together.</p>",
        _counts(
            "Why refused",
            refused["by_kind"],
            lambda k: REFUSAL_KINDS.get(k, _words(k)),
            "No request was refused in this period.",
        ),
        _chart("Refused requests", refused["by_kind"], lambda k: k),
        "<h2>The ledger</h2>",
        _ledger(ledger),
        "<h2>Accuracy and fairness (latest published audit)</h2>",
        _audit(report.get("accuracy_and_fairness")),
        "</body></html>",
    ]
    return "\n".join(parts)


# -- sections ------------------------------------------------------------------------------


def _review(review: dict[str, Any]) -> str:
    if not review["tasks"]:
        return _empty("No search in this period needed human review.")
    return _rows(
        [
            ("Review tasks opened", _int(review["tasks"])),
            ("Still open", _int(review["open_tasks"])),
            ("Candidates put to reviewers", _int(review["candidates"])),
            ("Confirmed", f"{_int(review['confirmed'])} ({_share(review['confirmed_share'])})"),
            ("Rejected", f"{_int(review['rejected'])} ({_share(review['rejected_share'])})"),
            ("Awaiting a decision", _int(review["awaiting"])),
            ("Median time to a decision", _hours(review["hours_to_decision_median"])),
            ("Longest time to a decision", _hours(review["hours_to_decision_max"])),
        ]
    ) + _chart(
        "Review outcomes (candidates)",
        {k: review[k] for k in ("confirmed", "rejected", "awaiting")},
        _words,
    )


def _policies(policies: list[dict[str, Any]]) -> str:
    header = [
        "Policy",
        "Similarity floor",
        "Below the floor",
        "Reviewers",
        "Each request must state",
        "Legal bases allowed",
        "Results at most",
        "Faces kept",
        "Search records kept",
    ]
    rows = []
    for p in policies:
        retention = p.get("retention") or {}
        rows.append(
            [
                _code(p["name"]),
                _number(p["floor"]),
                "raised to the floor" if p["raise_to_floor"] else "refused",
                _int(p["reviewers_required"]) if p["reviewers_required"] else "none",
                _e(", ".join(p["requires"])) if p["requires"] else "nothing more",
                _e(", ".join(_value(b).replace("_", " ") for b in p["legal_bases"])),
                _int(p["max_results"]),
                _days(retention.get("faces_after_last_use_days"), "after last use"),
                _days(retention.get("search_records_days"), ""),
            ]
        )
    return _table(header, rows, numeric={1, 6})


def _changes(changes: list[dict[str, Any]]) -> str:
    if not changes:
        return _empty("No policy was changed and no key moved to another policy.")
    rows = [
        [_int(c["seq"]), _e(_when(c["time"])), _e(_operation(c["operation"])), _code(c["by"])]
        for c in changes
    ]
    return _table(["Ledger event", "Time", "Change", "By key"], rows, numeric={0})


def _retention(done: dict[str, Any]) -> str:
    return _rows(
        [
            ("Retention runs", _int(done["retention_runs"])),
            ("Faces deleted by retention", _int(done["faces_deleted_by_retention"])),
            (
                "Review records deleted by retention",
                _int(done["review_tasks_deleted_by_retention"]),
            ),
            ("Erasure requests carried out", _int(done["erasures"])),
            ("Faces erased", _int(done["faces_erased"])),
        ]
    )


def _ledger(ledger: dict[str, Any]) -> str:
    if ledger.get("ok") and not ledger.get("events"):
        return "<p class='ok'>Verified: the ledger is empty; nothing has been recorded yet.</p>"
    if ledger.get("ok"):
        return (
            f"<p class='ok'>Verified: all {_int(ledger.get('events') or 0)} events are intact "
            f"and signed; {_int(ledger.get('heads_checked') or 0)} signed heads held outside the "
            "database were found in the chain.</p>"
        )
    return (
        f"<p class='bad'>Verification FAILED at event {_e(str(ledger.get('first_bad_seq')))}: "
        f"{_e(str(ledger.get('reason')))}. The figures above may not be complete.</p>"
    )


def _audit(audit: dict[str, Any] | None) -> str:
    if not audit:
        return _empty(
            "No accuracy and fairness audit has been published yet "
            "(an administrator runs `faceledger audit run`)."
        )
    parts = [
        f"<p>Audit of {_e(_when(audit.get('audit_created') or ''))}. Accuracy on the LFW "
        f"benchmark (pairs of news photos): {_share(audit.get('lfw_accuracy'), 2)}.</p>",
        "<h3>How often it errs, at three similarity thresholds</h3>",
        _table(
            ["", "At 80", "At 95", "At 99"],
            [
                ["Two different people reported as a match (false match rate)"]
                + [_rate(audit["overall_fmr"].get(t)) for t in ("80", "95", "99")],
                ["The same person missed (false non-match rate)"]
                + [_rate(audit["overall_fnmr"].get(t)) for t in ("80", "95", "99")],
            ],
            numeric={1, 2, 3},
        ),
        "<h3>By group, at similarity 80</h3>",
        _table(
            ["Group", "False match rate", "False non-match rate"],
            [
                [_e(GROUPS.get(g, _words(g))), _rate(v.get("fmr")), _rate(v.get("fnmr"))]
                for g, v in audit.get("by_group_at_80", {}).items()
            ],
            numeric={1, 2},
        ),
    ]
    thresholds = audit.get("worst_group_thresholds") or {}
    if thresholds:
        parts += [
            "<h3>Thresholds that keep every measurable group safe</h3>",
            _table(
                ["Target false match rate", "Threshold", "Set by the group"],
                [
                    [
                        _rate(float(target)),
                        _number(v.get("threshold")),
                        _e(GROUPS.get(v.get("set_by") or "", _words(v.get("set_by") or "-"))),
                    ]
                    for target, v in thresholds.items()
                ],
                numeric={0, 1},
            ),
        ]
    limits = audit.get("limits") or []
    if limits:
        parts.append("<h3>What this data can and cannot show</h3><ul>")
        parts += [f"<li>{_e(str(limit))}</li>" for limit in limits]
        parts.append("</ul>")
    return "\n".join(parts)


# -- building blocks ------------------------------------------------------------------------


def _cards(cards: list[tuple[str, str]]) -> str:
    inner = "".join(f"<div class='card'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards)
    return f"<div class='cards'>{inner}</div>"


def _counts(heading: str, counts: dict[str, int], label: Any, empty: str) -> str:
    if not counts or not any(counts.values()):
        return _empty(empty)
    rows = [[_e(label(k)), _int(v)] for k, v in counts.items()]
    return _table([heading, "Count"], rows, numeric={1})


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """``rows`` hold HTML already escaped; ``numeric`` columns are right-aligned."""
    head = "".join(
        f"<th class='{'n' if i in numeric else ''}'>{_e(h)}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'n' if i in numeric else ''}'>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _chart(title: str, counts: dict[str, int], label: Any) -> str:
    if not counts or not any(counts.values()):
        return ""  # the table above already says "none" in words
    return bar_chart(title, {label(k): v for k, v in counts.items()})


def _empty(text: str) -> str:
    return f"<p class='empty'>{_e(text)}</p>"


# -- values ---------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _code(text: str) -> str:
    return f"<code>{_e(text)}</code>"


def _value(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


def _int(value: int | float) -> str:
    return f"{round(value):,}"


def _number(value: Any) -> str:
    """Thresholds and floors: 80, 99, 96.75 (no trailing .0)."""
    if value is None:
        return "none"
    return f"{float(value):g}"


def _share(value: float | None, digits: int = 0) -> str:
    return "not measured" if value is None else f"{value * 100:.{digits}f} %"


def _rate(value: float | None) -> str:
    """An error rate as a percentage with two significant digits, never in e-notation."""
    if value is None:
        return "too few to measure"
    if value == 0:
        return "0 %"
    percent = value * 100
    decimals = max(0, 1 - math.floor(math.log10(percent)))
    return f"{percent:.{decimals}f} %"


def _hours(value: float | None) -> str:
    if value is None:
        return "no decisions yet"
    minutes = value * 60
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if value < 72:
        return f"{value:.1f} hours"
    return f"{value / 24:.1f} days"


def _days(value: int | None, after: str) -> str:
    if value is None:
        return "set per collection"
    years = value // 365
    if value % 365:
        span = f"{_int(value)} days"
    else:
        span = f"{years} year" if years == 1 else f"{years} years"
    return f"{span} {after}".strip()


def _words(name: str) -> str:
    text = _value(name).replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]


def _not_recorded(name: str) -> str:
    return "not recorded" if name in ("(not recorded)", "(none stated)") else name


def _operation(name: str) -> str:
    """``SearchFacesByImage`` -> ``Search faces by image``; route names kept as they are."""
    if " " in name or "/" in name:
        return name
    words = re.findall(r"[A-Z][a-z]+|[A-Z]+(?![a-z])|[a-z]+|\d+", name)
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else name


def _period(period: dict[str, str]) -> tuple[str, str]:
    start = dt.datetime.fromisoformat(period["from"])
    end = dt.datetime.fromisoformat(period["to"])
    if end.time() == dt.time(0) and end > start:
        end -= dt.timedelta(days=1)  # the period ends at midnight: its last day is the one before
    return _day(start), _day(end)


def _day(moment: dt.datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _when(stamp: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return f"{_day(moment)}, {moment:%H:%M} UTC"
