from __future__ import annotations

import asyncio
import contextlib

import structlog
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.responses import Response

from gateway.api_support import json_response, problems
from gateway.auth import RuntimeDep
from gateway.errors import DATABASE_UNAVAILABLE
from gateway.webhooks.dispatcher import backlog

log = structlog.get_logger("gateway.ops")
router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is running")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The database answers", responses=problems(DATABASE_UNAVAILABLE))
async def readyz(rt: RuntimeDep) -> Response:
    try:
        async with asyncio.timeout(3):
            async with rt.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readyz.database_unavailable", error=type(exc).__name__)
        return DATABASE_UNAVAILABLE.response("The database does not answer.")
    return json_response({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(rt: RuntimeDep) -> Response:
    with contextlib.suppress(Exception):  # metrics stay available while the database is not
        count, age = await backlog(rt)
        rt.metrics.webhook_backlog.set(count)
        rt.metrics.webhook_oldest_due_age.set(age)
    return Response(rt.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
