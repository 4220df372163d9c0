"""Local "buckets": the subfolders of ``FACELEDGER_S3_BUCKET_DIR`` stand in for S3 buckets,
for Rekognition's ``S3Object`` (images and videos) and the native API's video jobs."""

from __future__ import annotations

from pathlib import Path

from faceledger.errors import FaceledgerError
from faceledger.service.context import Services


class InvalidS3Object(FaceledgerError):
    code = "INVALID_S3_OBJECT"


# Videos uploaded to the native API live in the data directory under this bucket name, only
# until the job that reads them ends (faceledger keeps no images or videos).
UPLOADS = "faceledger-uploads"


def uploads_folder(services: Services) -> Path:
    folder = Path(services.settings.data_dir).resolve() / "uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def resolve_object(services: Services, bucket: object, name: object) -> Path:
    """The file a bucket and name stand for. Names that leave the bucket folder (``..``,
    absolute paths, symbolic links pointing out) are refused."""
    if bucket == UPLOADS and isinstance(name, str):
        path = (uploads_folder(services) / name).resolve()
        if path.parent != uploads_folder(services) or not path.is_file():
            raise InvalidS3Object(f"no uploaded video {name[:100]!r}")
        return path
    root = services.settings.s3_bucket_dir
    if root is None:
        raise InvalidS3Object(
            "S3 objects are not available on this server (set FACELEDGER_S3_BUCKET_DIR to a "
            "folder whose subfolders act as buckets)"
        )
    if not isinstance(bucket, str) or not isinstance(name, str) or not bucket or not name:
        raise InvalidS3Object("an S3 object needs a Bucket and a Name")
    base = Path(root).resolve()
    folder = (base / bucket).resolve()  # resolve() follows links: checked after
    if folder == base or not folder.is_relative_to(base):
        raise InvalidS3Object("the bucket name leaves the bucket directory")
    path = (folder / name).resolve()
    if path == folder or not path.is_relative_to(folder):
        raise InvalidS3Object("the S3 object name leaves its bucket folder")
    if not path.is_file():
        raise InvalidS3Object(f"no object {bucket}/{name}")
    return path
