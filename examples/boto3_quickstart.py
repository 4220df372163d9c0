"""Existing Rekognition code, pointed at a faceledger server. Only the client changes.

    faceledger keys create --role admin --name setup --aws           # collections
    faceledger keys create --role operator --name app --aws --purpose "photo library search"
    faceledger collections create quickstart
    faceledger consent record quickstart --collection --by "the people photographed" \
        --document "consent/quickstart.pdf"    # the default policy, photo-library, needs it
    python examples/boto3_quickstart.py PORTRAIT.jpg OTHER_PHOTO.jpg

Keys come from FACELEDGER_ADMIN_KEY_ID/SECRET and FACELEDGER_KEY_ID/SECRET, the server from
FACELEDGER_ENDPOINT (default http://127.0.0.1:8080).
"""

import contextlib
import os
import sys

import boto3


def client(prefix: str):
    return boto3.client(
        "rekognition",
        endpoint_url=os.environ.get("FACELEDGER_ENDPOINT", "http://127.0.0.1:8080"),
        region_name="us-east-1",
        aws_access_key_id=os.environ[f"{prefix}_ID"],
        aws_secret_access_key=os.environ[f"{prefix}_SECRET"],
    )


admin = client("FACELEDGER_ADMIN_KEY")  # creates collections
rekognition = client("FACELEDGER_KEY")  # indexes and searches: what an application holds

portrait, other_photo = sys.argv[1], sys.argv[2]

with contextlib.suppress(admin.exceptions.ResourceAlreadyExistsException):
    admin.create_collection(CollectionId="quickstart")

with open(portrait, "rb") as image:
    indexed = rekognition.index_faces(
        CollectionId="quickstart",
        Image={"Bytes": image.read()},
        ExternalImageId="person-1",
        MaxFaces=1,
        QualityFilter="AUTO",
    )
print("indexed", [r["Face"]["FaceId"] for r in indexed["FaceRecords"]])

with open(other_photo, "rb") as image:
    found = rekognition.search_faces_by_image(
        CollectionId="quickstart",
        Image={"Bytes": image.read()},
        FaceMatchThreshold=95,
    )
for match in found["FaceMatches"]:
    # A candidate for a person to review, not an identification.
    print("candidate", match["Face"]["ExternalImageId"], round(match["Similarity"], 2))
