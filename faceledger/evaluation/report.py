"""The audit as one self-contained HTML file: tables, charts (matplotlib, embedded as PNG)
and a plain statement of what the data can and cannot show."""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt

from faceledger.charts import png_img as _png


def _det_chart(report: dict[str, Any]) -> str:
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for group, curve in report["det"].items():
        if curve["fmr"]:
            axis.plot(
                curve["fmr"], curve["fnmr"], label=group, linewidth=2.5 if group == "all" else 1.4
            )
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="false match rate (impostors within group)",
        ylabel="false non-match rate",
        title="DET curves by group",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


def _fmr_chart(report: dict[str, Any]) -> str:
    groups = [g for g in report["by_gender"] + report["by_race"]]
    floors = [t for t in report["thresholds"][:3]]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(floors), 1)
    for i, threshold in enumerate(floors):
        key = f"{threshold:g}"
        xs, ys, lows, highs = [], [], [], []
        for j, g in enumerate(groups):
            rate = g["fmr"][key]
            if rate["value"] is None:
                continue
            value = rate["high"] if rate["upper_bound_only"] else rate["value"]
            xs.append(j + i * width)
            ys.append(max(value, 1e-7))
            lows.append(max(value - (rate["low"] or 0), 0))
            highs.append(max((rate["high"] or value) - value, 0))
        axis.errorbar(
            xs, ys, yerr=[lows, highs], fmt="o", capsize=3, label=f"similarity {threshold:g}"
        )
    axis.set_xticks(
        [j + width for j in range(len(groups))], [g["group"] for g in groups], rotation=30
    )
    axis.set(
        yscale="log",
        ylabel="false match rate (95 % CI)",
        title="False match rate by group at the policy floors",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


def _fpir_chart(report: dict[str, Any]) -> str:
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for result in report["identification"]:
        points = sorted(
            (float(t), r["value"] if r["value"] is not None else float("nan"))
            for t, r in result["fpir"].items()
        )
        axis.plot(
            [p[0] for p in points],
            [max(p[1], 1e-5) for p in points],
            "o-",
            label=f"gallery {result['gallery_size']}",
        )
    axis.set(
        yscale="log",
        xlabel="similarity threshold",
        ylabel="FPIR",
        title="False positive identification rate vs threshold and gallery size",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


def _acquisition_chart(report: dict[str, Any]) -> str:
    cells = report["acquisition"].get("by_race", {})
    if not cells:
        return "<p>No UTKFace data.</p>"
    figure, axis = plt.subplots(figsize=(6.5, 4))
    names = list(cells)
    for offset, metric in ((-0.15, "missed"), (0.15, "gate_rejected")):
        rates = [cells[n][metric] for n in names]
        ys = [r["value"] or 0 for r in rates]
        low = [y - (r["low"] or 0) for y, r in zip(ys, rates, strict=True)]
        high = [(r["high"] or 0) - y for y, r in zip(ys, rates, strict=True)]
        axis.errorbar(
            [i + offset for i in range(len(names))],
            ys,
            yerr=[low, high],
            fmt="o",
            capsize=3,
            label=metric.replace("_", " "),
        )
    axis.set_xticks(range(len(names)), names)
    axis.set(ylabel="share of images (95 % CI)", title="Failure to acquire by group (UTKFace)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


def _models_section(report: dict[str, Any]) -> str:
    models = report.get("models") or []
    if not models:
        return ""
    head = "".join(
        f"<th colspan=2>{html.escape(m['version'])}{' (audited)' if m['audited'] else ''}<br>"
        f"<small>threshold {m['threshold_1e-3']}</small></th>"
        for m in models
    )
    sub = "<th>FMR / 1e-3</th><th>FNMR</th>" * len(models)
    names = list(dict.fromkeys(g for m in models for g in m["groups"]))
    rows = ""
    for name in names:
        cells = ""
        for m in models:
            g = m["groups"].get(name)
            if g is None:
                cells += "<td></td><td></td>"
                continue
            fmr = g["fmr"]
            if fmr["value"] is None:
                cells += f"<td>{_fmt(fmr)}</td>"
            elif fmr["upper_bound_only"]:
                bound = fmr["high"] / 1e-3
                cells += f"<td>&lt; {bound:.2f}x <small>(0 of {fmr['trials']:,})</small></td>"
            else:
                cells += (
                    f"<td>{fmr['value'] / 1e-3:.2f}x <small>[{fmr['low'] / 1e-3:.2f}, "
                    f"{fmr['high'] / 1e-3:.2f}]</small></td>"
                )
            fnmr = g["fnmr"]
            shown = f"{fnmr['value']:.2%}" if fnmr["value"] is not None else _fmt(fnmr)
            cells += f"<td>{shown}</td>"
        rows += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), sharey=True)
    for axis, m in zip(list(getattr(axes, "flat", [axes])), models, strict=True):
        for group, curve in m["det"].items():
            if curve["fmr"]:
                width = 2.5 if group == "all" else 1.2
                axis.plot(curve["fmr"], curve["fnmr"], label=group, linewidth=width)
        axis.set(xscale="log", yscale="log", xlabel="false match rate", title=m["version"])
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    return f"""<h2>Face models side by side</h2>
<p>Each model at its own threshold for an overall false match rate of 1e-3 (its own scale);
group rates on impostor pairs within the group, 95 % intervals over people.</p>
<table><tr><th rowspan=2>group</th>{head}</tr><tr>{sub}</tr>{rows}</table>
{_png(figure)}"""


def _fmt(rate: dict[str, Any]) -> str:
    if rate["value"] is None:
        return f'<span class="na">{html.escape(rate["note"] or "too small")}</span>'
    if rate["upper_bound_only"]:
        return f"&lt; {rate['high']:.2g} <small>(0 of {rate['trials']:,})</small>"
    return (
        f"{rate['value']:.2g} <small>[{rate['low']:.2g}, {rate['high']:.2g}] "
        f"n={rate['trials']:,}</small>"
    )


def _group_table(groups: list[dict[str, Any]], thresholds: list[float], metric: str) -> str:
    head = "".join(f"<th>{t:g}</th>" for t in thresholds)
    rows = "".join(
        f"<tr><td>{html.escape(g['group'])}</td><td>{g['identities']:,}</td><td>{g['images']:,}"
        f"</td>" + "".join(f"<td>{_fmt(g[metric][f'{t:g}'])}</td>" for t in thresholds) + "</tr>"
        for g in groups
    )
    return f"<table><tr><th>group</th><th>people</th><th>images</th>{head}</tr>{rows}</table>"


def render_html(report: dict[str, Any]) -> str:
    v = report["verification"]
    thresholds = report["thresholds"]
    groups = [report["overall"], *report["by_gender"], *report["by_race"]]
    calibration = "".join(
        f"<li>FMR &le; {fmr} for every measured group: similarity "
        f"<b>{c['threshold']}</b> (set by {html.escape(str(c['worst_group']))}); "
        f"not measurable for: {html.escape(', '.join(c['unmeasurable_groups']) or 'none')}</li>"
        for fmr, c in report["worst_group_calibration"].items()
    )
    limits = "".join(f"<li>{html.escape(text)}</li>" for text in report["limits"])
    ident_rows = "".join(
        f"<tr><td>{r['gallery_size']:,}</td>"
        + "".join(
            f"<td>{_fmt(r['fpir'][f'{t:g}'])}</td><td>{_fmt(r['fnir'][f'{t:g}'])}</td>"
            for t in thresholds[:3]
        )
        + "</tr>"
        for r in report["identification"]
    )
    ident_head = "".join(f"<th>FPIR {t:g}</th><th>FNIR {t:g}</th>" for t in thresholds[:3])
    return f"""<!doctype html><html lang="en"><meta charset="utf-8">
<title>faceledger accuracy and fairness audit</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:right}}td:first-child{{text-align:left}}small{{color:#555}}.na{{color:#999}}
img{{max-width:100%}}</style>
<h1>faceledger accuracy and fairness audit</h1>
<p>faceledger {report["faceledger_version"]}, {report["created"]}. Pipeline:
{html.escape(str(report["pipeline"]))}. Data: {report["data"]["lfw_images"]:,} LFW images of
{report["data"]["lfw_people"]:,} people; {report["data"]["race_labelled_people"]:,} people
with race labels.</p>
<h2>Verification (LFW view 2)</h2>
<p>Accuracy {v["accuracy_mean"]:.2%} &plusmn; {v["accuracy_std"]:.2%} over {v["folds"]}
fold(s) of {v["pairs"]:,} pairs; ROC AUC {v["roc_auc"]:.5f}; TAR {v["tar_at_far_1e3"]:.2%} at
FAR 1e-3; {v["no_face_images"]} images without a detected face.</p>
{_det_chart(report)}
<h2>False match rate by group (impostors within the group)</h2>
<p>Thresholds are similarities: the policy floors 80, 95, 99, then the thresholds the shipped
calibration gives for FMR 1e-2, 1e-3, 1e-4 overall.</p>
{_group_table(groups, thresholds, "fmr")}
{_fmr_chart(report)}
<h2>False non-match rate by group</h2>
{_group_table(groups, thresholds, "fnmr")}
<h2>Identification (1:N)</h2>
<table><tr><th>gallery</th>{ident_head}</tr>{ident_rows}</table>
{_fpir_chart(report)}
<h2>Failure to acquire (UTKFace)</h2>
{_acquisition_chart(report)}
<h2>Thresholds from the worst group</h2><ul>{calibration}</ul>
{_models_section(report)}
<h2>What this data can and cannot show</h2><ul>{limits}</ul>
</html>"""
