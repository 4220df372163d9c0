from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from faceledger.cli.main import app
from tests.conftest import EXAMPLES, LFW, require

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_detect_json() -> None:
    result = invoke("detect", require(EXAMPLES / "two_people.jpg"), "--json")
    assert result.exit_code == 0, result.output
    (image,) = json.loads(result.stdout)["images"]
    assert len(image["faces"]) == 2
    face = image["faces"][0]
    assert set(face["box"]) == {"left", "top", "width", "height"}
    assert [p["type"] for p in face["landmarks"]] == [
        "eye_right_outer",
        "eye_right_inner",
        "eye_left_outer",
        "eye_left_inner",
        "nose_base",
    ]
    assert face["gate"]["passed"] is True and face["gate"]["level"] == "AUTO"
    assert {"brightness", "sharpness", "face_size", "pose", "confidence"} <= set(face["quality"])


def test_detect_table_and_bad_files(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    result = invoke("detect", require(EXAMPLES / "obama.jpg"), text)
    assert result.exit_code == 3
    assert "1 face(s)" in result.stdout
    assert "UNSUPPORTED_FORMAT" in result.stderr
    missing = invoke("detect", tmp_path / "absent.jpg")
    assert missing.exit_code == 4 and "NOT_FOUND" in missing.stderr


def test_detect_embed_batches_and_keeps_errors_in_order(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    obama, pair = require(EXAMPLES / "obama.jpg"), EXAMPLES / "two_people.jpg"
    result = invoke("detect", obama, text, pair, "--embed", "--json")
    assert result.exit_code == 3
    images = json.loads(result.stdout)["images"]
    assert [i["image"] for i in images] == [str(obama), str(text), str(pair)]
    assert images[1]["error"]["code"] == "UNSUPPORTED_FORMAT"
    vectors = [f["embedding"] for i in (images[0], images[2]) for f in i["faces"]]
    assert len(vectors) == 3 and all(len(v) == 128 for v in vectors)
    reference = invoke("detect", obama, "--embed", "--json", "--backend", "dlib")
    (dlib_face,) = json.loads(reference.stdout)["images"][0]["faces"]
    assert max(abs(a - b) for a, b in zip(vectors[0], dlib_face["embedding"], strict=True)) <= 1e-4


def test_models_build(tmp_path, monkeypatch) -> None:
    from faceledger.config import get_settings

    monkeypatch.setenv("FACELEDGER_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = invoke("models", "build", "--json")
        assert result.exit_code == 0, result.output
        graphs = {g["model"]: g for g in json.loads(result.stdout)["graphs"]}
        assert set(graphs) == {"resnet128", "cnn", "yunet", "sface", "sface-int8"}
        assert all(
            g["path"].startswith(str(tmp_path)) and g["bytes"] > 100_000 for g in graphs.values()
        )
        listing = json.loads(invoke("models", "list", "--json").stdout)
        built = {m["name"]: m["onnx"] for m in listing["models"]}
        assert built["resnet128"]["built"] and built["hog"] is None
    finally:
        get_settings.cache_clear()


def test_compare_json() -> None:
    result = invoke(
        "compare",
        require(EXAMPLES / "obama.jpg"),
        EXAMPLES / "knn_examples" / "test" / "obama_and_biden.jpg",
        "--json",
        "--threshold",
        "95",
    )
    assert result.exit_code == 0, result.output
    faces = json.loads(result.stdout)["faces"]
    assert [f["match"] for f in faces].count(True) == 1
    best = max(faces, key=lambda f: f["similarity"])
    assert best["match"] and best["false_match_rate"] < 1e-3


def test_compare_without_a_source_face(tmp_path) -> None:
    result = invoke(
        "compare", require(EXAMPLES.parent.parent / "dlib/faces/dogs.jpg"), EXAMPLES / "obama.jpg"
    )
    assert result.exit_code == 3 and "NO_FACE_DETECTED" in result.stderr


def test_models_list() -> None:
    result = invoke("models", "list", "--json")
    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    names = {m["name"] for m in listing["models"]}
    assert names == {"yunet", "hog", "cnn", "landmarks5", "resnet128", "sface", "sface-int8"}
    assert listing["calibration"]["thresholds_for_fmr"]["0.0001"] is not None
    worst = listing["fairness_calibration"]["0.001"]  # shipped by `make audit`
    assert worst["threshold"] >= listing["calibration"]["thresholds_for_fmr"]["0.001"]


@pytest.fixture(scope="module")
def one_fold_runs(lfw_cache):
    """LFW fold 1 through the CLI twice, with a fresh cache: computed, then cached."""
    require(LFW)
    runs = [invoke("eval", "lfw", "--folds", "1", "--json") for _ in range(2)]
    for run in runs:
        assert run.exit_code == 0, run.output
    return [json.loads(run.stdout) for run in runs]


def test_lfw_one_fold_accuracy(one_fold_runs) -> None:
    report = one_fold_runs[0]
    assert report["pairs"] == 600 and report["folds"] == 1
    assert report["images"] == 807
    assert report["no_face_images"] <= 2  # measured: 0 (5 found by the CNN fallback)
    assert report["accuracy_at_default_threshold"] >= 0.98  # measured: 98.83 %
    assert report["accuracy_mean"] >= 0.985  # measured: 99.17 % (threshold fitted on the fold)
    assert report["roc_auc"] >= 0.998
    assert report["computed_images"] == 807 and report["images_per_second"] > 0


def test_lfw_second_run_is_cached(one_fold_runs) -> None:
    first, second = one_fold_runs
    assert second["cached_images"] == 807 and second["computed_images"] == 0
    assert second["accuracy_mean"] == first["accuracy_mean"]


def test_lfw_fold_through_dlib_gives_the_same_accuracy(one_fold_runs) -> None:
    # The reference backend on the same fold (about 90 s: dlib's own networks are slow).
    run = invoke("eval", "lfw", "--folds", "1", "--backend", "dlib", "--json")
    assert run.exit_code == 0, run.output
    reference, onnx = json.loads(run.stdout), one_fold_runs[0]
    assert reference["computed_images"] == 807  # its own cache entries, not the ONNX ones
    assert onnx["pipeline"]["backend"] == "onnx" and reference["pipeline"]["backend"] == "dlib"
    for figure in ("accuracy_mean", "accuracy_at_default_threshold"):
        assert abs(onnx[figure] - reference[figure]) <= 0.0005  # measured: identical
    assert abs(onnx["roc_auc"] - reference["roc_auc"]) <= 1e-4


def test_eval_with_missing_data(tmp_path) -> None:
    result = invoke("eval", "lfw", "--data", tmp_path)
    assert result.exit_code == 4 and "DATASET_ERROR" in result.stderr


def test_bad_fold_is_a_usage_error() -> None:
    assert invoke("eval", "lfw", "--folds", "11").exit_code == 2


def test_help_imports_no_heavy_library() -> None:
    """`faceledger --help` and light commands must answer at once: the engine (dlib, ONNX
    Runtime), the store (SQLAlchemy, Alembic), charts (matplotlib) and video (PyAV) are
    imported when a command needs them, not when the CLI starts (it took 1.6 s)."""
    import subprocess
    import sys

    heavy = ["dlib", "onnxruntime", "onnx", "sqlalchemy", "alembic", "matplotlib", "av", "PIL"]
    probe = (
        "import sys, faceledger.cli.main\n"
        f"print([m for m in {heavy!r} if m in sys.modules and hasattr(sys.modules[m], '__file__')])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]", loaded
    shown = invoke("--help")
    assert shown.exit_code == 0 and "collections" in shown.stdout


def test_tables_never_cut_the_ids_a_user_types_next(tmp_path, monkeypatch) -> None:
    """On a 60-column terminal `keys list` wraps the other columns, never the key id that
    `keys revoke` needs (it showed "flk_86…")."""
    from tests.security.server_process import cli

    monkeypatch.setenv("COLUMNS", "60")
    created = cli(
        tmp_path, "keys", "create", "--role", "operator", "--name", "a long name", "--json"
    )
    key_id = json.loads(created.stdout)["key_id"]
    listed = cli(tmp_path, "keys", "list").stdout
    assert key_id in listed, listed
    assert max(len(line) for line in listed.splitlines()) <= 60


def test_serve_says_so_when_the_port_is_taken(tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--port", str(port), "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "listening on" not in result.output  # no banner for a server that never started
