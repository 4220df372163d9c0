from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from faceledger.service import collections, consent
from tests.api.conftest import lfw_image
from tests.conftest import require
from tests.rekognition.conftest import LOCAL

EXAMPLE = Path(__file__).parents[2] / "examples" / "boto3_quickstart.py"


def test_quickstart_example_runs_against_the_server(server) -> None:
    # As its docstring says: keys under the default policy, the collection, consent on record.
    admin_id, admin_secret = server.aws_key("admin", policy=None)
    key_id, secret = server.aws_key("operator", purpose="quickstart example", policy=None)
    collections.create_collection(server.services, LOCAL, "quickstart")
    consent.record_consent(
        server.services,
        LOCAL,
        "quickstart",
        subject_kind="collection",
        subject=None,
        consented_by="the people photographed",
        document_reference="consent/quickstart.pdf",
    )
    env = os.environ | {
        "FACELEDGER_ENDPOINT": server.url,
        "FACELEDGER_ADMIN_KEY_ID": admin_id,
        "FACELEDGER_ADMIN_KEY_SECRET": admin_secret,
        "FACELEDGER_KEY_ID": key_id,
        "FACELEDGER_KEY_SECRET": secret,
    }
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            str(require(lfw_image("George_W_Bush", 1))),
            str(lfw_image("George_W_Bush", 2)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "indexed ['" in result.stdout
    assert "candidate person-1" in result.stdout
