"""The HTTP interfaces: the native REST API under /v1 (and, later, Rekognition's wire API)."""

from faceledger.api.app import create_app

__all__ = ["create_app"]
