"""`faceledger index` says when nothing could be indexed (finding 9): exit 3, as the README says
for bad input, when every image was refused or had no face; 0 when all went in."""

from __future__ import annotations

import shutil

from tests.api.conftest import lfw_image
from tests.conftest import DLIB_FACES, require
from tests.security.server_process import cli, prepare


def test_index_exit_codes(tmp_path) -> None:
    data_dir = tmp_path / "data"
    prepare(data_dir, "c")
    no_face = tmp_path / "no-face"
    no_face.mkdir()
    shutil.copy(require(DLIB_FACES / "dogs.jpg"), no_face / "dogs.jpg")
    (no_face / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    result = cli(data_dir, "index", "c", str(no_face), "--policy", "test-open", check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "0 faces indexed" in result.stdout
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(lfw_image("Tony_Blair", 1), good / "tony.jpg")
    result = cli(data_dir, "index", "c", str(good), "--policy", "test-open", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    refused = cli(data_dir, "index", "c", str(good), check=False)  # photo-library: no consent
    assert refused.returncode != 0 and "consent" in refused.stderr
