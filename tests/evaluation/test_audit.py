from __future__ import annotations

import json

from typer.testing import CliRunner

from faceledger.cli.main import app
from tests.chromium import assert_drawn, assert_plain_words, screenshot, visible_text
from tests.conftest import DATA, require


def test_quick_audit_writes_its_report(tmp_path, lfw_cache) -> None:
    require(DATA / "lfw")
    require(DATA / "utkface")
    out, data_dir = tmp_path / "audit", tmp_path / "var"
    result = CliRunner().invoke(
        app, ["audit", "run", "--quick", "--out", str(out), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "audit.json").read_text())
    page = (out / "audit.html").read_text()
    for heading in (
        "Verification (LFW view 2)",
        "False match rate by group",
        "Identification (1:N)",
        "Failure to acquire",
        "Thresholds from the worst",
        "What this data can and cannot show",
        "Face models side by side",
    ):
        assert heading in page
    assert page.count("data:image/png;base64,") == 5
    # The audited (default) model and the others, each at its own overall 1e-3 threshold.
    sides = {m["version"]: m for m in report["models"]}
    default = "sface-2021dec-int8/1.0"
    fsn = f"{default} + FSN k=25 (off)"  # label-free normalisation, shown beside
    assert set(sides) == {default, "sface-2021dec/1.0", "dlib-resnet128-flip/1.0", fsn}
    assert [v for v, side in sides.items() if side["audited"]] == [default]
    assert report["face_model_version"] == default
    for side in sides.values():
        assert side["threshold_1e-3"] is not None and side["det"]["all"]["fmr"]
        assert side["groups"]["M"]["fnmr"]["value"] is not None
    assert report["verification"]["pairs"] == 600
    genders = {g["group"]: g for g in report["by_gender"]}
    assert set(genders) == {"F", "M"}
    assert genders["M"]["fmr"]["80"]["value"] is not None
    assert genders["M"]["fmr"]["80"]["low"] <= genders["M"]["fmr"]["80"]["value"]
    races = {g["group"]: g for g in report["by_race"]}
    small = [r for r in races.values() if r["fmr"]["80"]["value"] is None]
    assert small and all("too small" in r["fmr"]["80"]["note"] for r in small)
    assert report["acquisition"]["images"] == 200
    assert set(report["worst_group_calibration"]) == {"0.001", "0.0001"}
    assert report["identification"][0]["mated_searches"] > 0
    assert (data_dir / "audit" / "latest-audit.json").is_file()
    calibration = json.loads((out / "fairness_calibration.json").read_text())
    assert calibration["subset"] is True
    # The accountability report of that data directory carries the audit's headline figures.
    day = report["created"][:10]
    written = tmp_path / "accountability"
    command = ["report", "accountability", "--from", day, "--to", day, "--out", str(written)]
    made = CliRunner().invoke(app, [*command, "--data-dir", str(data_dir)])
    assert made.exit_code == 0, made.output
    summary = json.loads((written / "accountability.json").read_text())["accuracy_and_fairness"]
    assert summary["lfw_accuracy"] == report["verification"]["accuracy_mean"]
    assert summary["overall_fmr"]["80"] == report["overall"]["fmr"]["80"]["value"]
    assert summary["by_group_at_80"]["M"]["fmr"] == genders["M"]["fmr"]["80"]["value"]
    assert (
        summary["worst_group_thresholds"]["0.001"]["threshold"]
        == (report["worst_group_calibration"]["0.001"]["threshold"])
    )
    page = (written / "accountability.html").read_text()
    text = visible_text(page)
    assert_plain_words(text)
    assert "Two different people reported as a match (false match rate)" in text
    assert "Women" in text and "Thresholds that keep every measurable group safe" in text
    assert "No uses in this period." in text  # an empty period says so in words
    assert_drawn(screenshot(written / "accountability.html", tmp_path / "accountability.png"))
