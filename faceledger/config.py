"""The one settings object. Every setting has a default, help text, and an environment variable.

Environment variables are the field names upper-cased with the ``FACELEDGER_`` prefix, e.g.
``FACELEDGER_EVAL_DATA=/srv/faces``. Bad values fail at start, not at first use.
"""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The names a face model is chosen by (settings, collections, the evaluation API): the
# recognizers of faceledger.vision.models.FACE_MODELS.
FaceModelName = Literal["sface-int8", "sface", "dlib"]

_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_eval_data() -> Path:
    # The evaluation data lives beside the project checkout, never inside it.
    return _PROJECT_ROOT.parent / "shared" / "data"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "faceledger"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACELEDGER_", frozen=True)

    eval_data: Path = Field(
        default_factory=_default_eval_data,
        description="Root of the evaluation data (holds lfw/, utkface/, samples/).",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where embeddings computed during evaluation are cached, by image hash.",
    )
    max_image_bytes: int = Field(
        default=15 * 1024 * 1024, gt=0, description="Largest encoded image accepted, in bytes."
    )
    max_image_pixels: int = Field(
        default=40_000_000, gt=0, description="Largest decoded image accepted, in pixels."
    )
    min_image_side: int = Field(
        default=80, ge=1, description="Smallest accepted width or height, in pixels."
    )
    workers: int = Field(
        default=2, ge=1, le=64, description="Processes used by batch work such as evaluation."
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="The service's data: database (SQLite by default), ledger key, admin key.",
    )
    database_url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; default: SQLite file faceledger.db in the data dir.",
    )
    retention_interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="How often the server deletes what retention makes due (0: never).",
    )
    default_policy: str = Field(
        default="photo-library",
        description="The use policy of keys created without one (and of the local CLI).",
    )
    detector: Literal["yunet", "hog", "cnn"] = Field(
        default="yunet",
        description="The face detector: yunet (fast, finds small and turned faces), hog (dlib's "
        "HOG, frontal faces), cnn (dlib's MMOD CNN, slow).",
    )
    min_face_px: int = Field(
        default=40,
        ge=8,
        le=4096,
        description="The smallest face, in an image's own pixels, detection must find; it sets "
        "how far images are scaled before detection (smaller costs more).",
    )
    cnn_fallback: bool = Field(
        default=True,
        description="Where the detector finds no face, try the CNN detector (slow, only on "
        "those images).",
    )
    face_model: FaceModelName = Field(
        default="sface-int8",
        description="The face model of new collections (sface-int8: SFace in int8, as accurate "
        "as sface and 1.7x faster; sface: SFace in float32; dlib: dlib's descriptor, a far "
        "larger race differential). Each collection keeps the model it was made with.",
    )
    s3_bucket_dir: Path | None = Field(
        default=None,
        description="Folder whose subfolders act as buckets for Rekognition's Image.S3Object.",
    )
    aws_rate_limit: float = Field(
        default=50.0,
        ge=0,
        description="Rekognition-endpoint requests per second per access key (0 = no limit).",
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on.")
    max_request_bytes: int = Field(
        default=20 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted (base64 makes images a third larger).",
    )

    aws_regions: str = Field(
        default="us-east-1",
        description="Comma-separated regions a SigV4 credential scope may name; others are "
        "refused.",
    )
    engine_concurrency: int = Field(
        default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)),
        ge=1,
        le=64,
        description="Requests decoding and analysing images at once (default: the cores).",
    )
    engine_queue: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Requests that may wait for the engine; beyond it the answer is 503 with "
        "Retry-After.",
    )
    refusal_rate: float = Field(
        default=2.0,
        gt=0,
        description="Refused requests per second a client address may make (bursts of "
        "refusal_burst); beyond it, 429 without checking credentials.",
    )
    refusal_burst: int = Field(
        default=20, ge=1, description="Refused requests a client address may make in a burst."
    )
    video_jobs: int = Field(
        default=1, ge=1, le=16, description="Video jobs worked on at once; the rest wait."
    )
    ray_address: str = Field(
        default="",
        description="Run video jobs' decoding, detection and descriptors as Ray tasks on this "
        "cluster (host:port, ray://..., auto; 'local': a Ray started in this process); every "
        "write stays in the server. Empty: on the server's own threads.",
    )
    video_segment_seconds: float = Field(
        default=10.0,
        ge=1.0,
        le=3600.0,
        description="On Ray, a video is analysed in segments of this many seconds, one task "
        "each. Either way, detection starts afresh at each segment's start, so both give the "
        "same results.",
    )
    video_scan_fps: float = Field(
        default=5.0,
        ge=0.0,
        le=60.0,
        description="A video job sampled faster than this (every frame, say) has YuNet look "
        "at whole frames this often, and in the frames between only around the faces of the "
        "frame before: someone new is found at the next whole look. 0: every sampled frame "
        "looked at whole.",
    )
    max_video_bytes: int = Field(
        default=10 * 1024**3, gt=0, description="Largest video file accepted, in bytes."
    )
    max_video_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="Longest video accepted, in seconds."
    )
    sns_webhooks: str = Field(
        default="",
        description='Rekognition NotificationChannel topics as webhooks, JSON: {"<SNS topic ARN>": '
        '{"url": "<https://...>", "secret": "<HMAC key>"}}. Unmapped topics are refused.',
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For is believed: the client is then the nearest address in it that is not "
        "one of them. Empty: the connecting address is the client and the header is ignored.",
    )
    review_webhook_url: str = Field(
        default="",
        description="Where each closed review task's outcome is POSTed (JSON, signed with "
        "review_webhook_secret as X-Faceledger-Signature: sha256=<HMAC>), so the searcher "
        "learns it without polling.",
    )
    review_webhook_secret: str = Field(
        default="", description="HMAC key signing review outcome webhooks (required with a URL)."
    )
    approximate_above: int = Field(
        default=200_000,
        ge=0,
        description="A collection of this many faces or more is searched through compressed "
        "codes re-ranked exactly (faster; recall measured, near 1); 0: always exact.",
    )
    keep_face_crops: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Whether a new collection keeps a small encrypted crop of each indexed face "
        "for human review, unless its creator says: on, off, or auto (on when a policy that "
        "requires review covers the collection and is in use: bound to a key or the default).",
    )
    crop_views_per_minute: int = Field(
        default=600,
        ge=1,
        description="How many face crops one key may see a minute (each view is on the ledger).",
    )
    console_idle_minutes: float = Field(
        default=30.0,
        gt=0,
        description="A console session ends after this many minutes without a request.",
    )
    ledger_witness_urls: str = Field(
        default="",
        description="Comma-separated URLs that each signed ledger checkpoint is POSTed to "
        "(JSON), so copies of the heads exist beyond this machine.",
    )

    @field_validator("sns_webhooks")
    @classmethod
    def _webhooks_are_json(cls, value: str) -> str:
        if value.strip():
            parsed = json.loads(value)
            if not isinstance(parsed, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("url"), str) and v.get("secret")
                for v in parsed.values()
            ):
                raise ValueError('expected {"<topic ARN>": {"url": ..., "secret": ...}, ...}')
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the part
        return value

    @property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        )

    @model_validator(mode="after")
    def _review_webhook_is_signed(self) -> Settings:
        if self.review_webhook_url.strip():
            if not self.review_webhook_url.startswith(("http://", "https://")):
                raise ValueError("review_webhook_url must be an http:// or https:// URL")
            if not self.review_webhook_secret:
                raise ValueError("review_webhook_url needs review_webhook_secret to sign with")
        return self

    @property
    def webhooks(self) -> dict[str, dict[str, str]]:
        return json.loads(self.sns_webhooks) if self.sns_webhooks.strip() else {}

    @property
    def accepted_regions(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.aws_regions.split(",") if r.strip())

    @property
    def witness_urls(self) -> list[str]:
        return [u.strip() for u in self.ledger_witness_urls.split(",") if u.strip()]

    @property
    def anchor_file(self) -> Path:
        """Where signed ledger checkpoints are appended, outside the database."""
        return self.data_dir / "ledger" / "heads.jsonl"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'faceledger.db'}"

    @property
    def lfw_dir(self) -> Path:
        return self.eval_data / "lfw"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
