"""The FastAPI application: ``create_app()``; ``faceledger serve`` runs it with uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from faceledger import __version__, web
from faceledger.api import docs_pages, errors, openapi, rekognition
from faceledger.api.deps import refuse_unknown_query
from faceledger.api.guard import AddressThrottle, RequestGuard
from faceledger.api.rekognition.ratelimit import RateLimiter
from faceledger.api.routes import (
    admin,
    collections,
    evaluation,
    faces,
    governance,
    users,
    video,
    watches,
)
from faceledger.config import Settings, get_settings
from faceledger.memory import limit_arenas
from faceledger.service import retention
from faceledger.service import video as video_jobs
from faceledger.service import watch as watch_cases
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.keys import ensure_admin_key

log = logging.getLogger("faceledger")


async def _retention_loop(services: Services, hours: float) -> None:
    """Delete what retention makes due, at start and every ``hours``."""
    system = Request(Actor("system:retention", Role.LOCAL))
    while True:
        try:
            run = await run_in_threadpool(
                lambda: retention.run_retention(services, system, record_empty=False)
            )
            if run.face_count or run.deleted_review_tasks:
                log.info(
                    "retention: deleted %d faces, %d review tasks",
                    run.face_count,
                    len(run.deleted_review_tasks),
                )
        except Exception:  # keep the server up; the next run tries again
            log.exception("retention run failed")
        await asyncio.sleep(hours * 3600)


async def _refusal_flush_loop(services: Services, seconds: float = 15.0) -> None:
    """Write aggregated refusals once their minute is over, even when no new one arrives."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(services.refusals.flush)
        except Exception:  # keep the server up; the next round tries again
            log.exception("writing aggregated refusals failed")


async def _orphaned_jobs_loop(services: Services, seconds: float = 60.0) -> None:
    """Run the video jobs of a server that stopped without handing them back (another
    server's, on a shared database: its heartbeat ran out)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            resumed = await run_in_threadpool(video_jobs.resume_unfinished, services)
            if resumed:
                log.warning("took over %d video jobs whose server stopped", resumed)
        except Exception:  # keep the server up; the next round tries again
            log.exception("looking for orphaned video jobs failed")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The app. Given ``services``, it uses them and leaves closing them to the caller."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_arenas()  # the thread pool would otherwise keep every thread's freed memory
        owned = services is None
        app.state.services = services or Services.open(settings or get_settings(), saved_index=True)
        config = app.state.services.settings
        aws_rate = config.aws_rate_limit
        app.state.rate_limiter = RateLimiter(
            aws_rate, app.state.services.buckets("aws-requests", aws_rate, max(aws_rate, 1.0))
        )
        # Parsed once: the request guard reads it on every request.
        app.state.proxy_networks = config.proxy_networks
        app.state.refusal_throttle = AddressThrottle(
            app.state.services.buckets("refusals", config.refusal_rate, config.refusal_burst),
            config.refusal_rate,
        )
        key_file = ensure_admin_key(app.state.services)
        if key_file is not None:
            log.warning("first start: an admin API key was written to %s (mode 0600)", key_file)
        resumed = await run_in_threadpool(video_jobs.resume_unfinished, app.state.services)
        if resumed:
            log.warning("started again %d video jobs a stopped server left unfinished", resumed)
        hours = app.state.services.settings.retention_interval_hours
        tasks = [
            asyncio.create_task(_refusal_flush_loop(app.state.services)),
            asyncio.create_task(_orphaned_jobs_loop(app.state.services)),
        ]
        if hours:
            tasks.append(asyncio.create_task(_retention_loop(app.state.services, hours)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            watch_cases.stop_all(app.state.services)
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="faceledger",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by docs_pages, without a CDN
        redoc_url=None,
        description="Self-hosted face recognition that can be held to account. "
        "Every use of biometric data is recorded on a signed, hash-chained ledger; "
        "matches are candidates for human review, never identifications.",
    )
    errors.install(app)
    openapi.install(app)
    docs_pages.install(app)
    web.install(app)  # the console at /console; GET / leads there
    app.add_middleware(RequestGuard)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(refuse_unknown_query)])

    @v1.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for module in (collections, faces, users, admin, governance, evaluation, video, watches):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(rekognition.router)  # Rekognition's wire protocol at POST /
    return app
