from __future__ import annotations

import base64
import binascii
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import ActorDep, ServicesDep
from faceledger.config import FaceModelName
from faceledger.errors import InvalidParameterError
from faceledger.service import evaluation
from faceledger.service.common import Request

router = APIRouter(prefix="/evaluation", tags=["evaluation"])


class SideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="An image, base64; its largest face is used.")
    template: list[float] | None = Field(
        None, description="A 128-number descriptor of the model the pairs are scored with."
    )


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: SideIn
    b: SideIn
    label: Literal["same", "different"] | None = None


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn] = Field(min_length=1, max_length=evaluation.MAX_PAIRS)
    purpose: str | None = None
    face_model: FaceModelName | None = Field(
        None, description="The model to score with (default: the server's default model)."
    )


def _side(side: SideIn) -> evaluation.Side:
    if side.image is None:
        return evaluation.Side(template=side.template)
    try:
        return evaluation.Side(
            image=base64.b64decode(side.image, validate=True), template=side.template
        )
    except (binascii.Error, ValueError):
        raise InvalidParameterError("an image is base64") from None


@router.post("/compare")
async def compare(body: CompareIn, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    """Score labelled pairs for independent testing; nothing is stored (role auditor)."""
    pairs = [(_side(p.a), _side(p.b), p.label) for p in body.pairs]
    request = Request(actor, body.purpose)
    version, scored = await run_in_threadpool(
        partial(evaluation.compare_pairs, face_model=body.face_model), services, request, pairs
    )
    return {"face_model_version": version, "pairs": [s.__dict__ for s in scored]}


@router.get("/reports/latest", response_model=None)
async def latest(
    services: ServicesDep, actor: ActorDep, format: Literal["json", "html"] = "json"
) -> Any:
    """The last published audit (`faceledger audit run`), as JSON or as its HTML report."""
    report = await run_in_threadpool(evaluation.latest_report, services, Request(actor), format)
    return HTMLResponse(report) if format == "html" else report
