"""What the sandbox simulators share: their answer to a malformed control request, and the `POST /_sandbox/faults`
route that arms a deliberate fault for the next `count` times it can happen."""

from __future__ import annotations

from collections.abc import Collection, MutableMapping

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import JSONResponse


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault: str
    count: StrictInt = Field(default=1, ge=0)


def invalid_request(exc: ValidationError) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "detail": exc.errors(include_url=False)}, 422)


def add_fault_route(app: FastAPI, faults: MutableMapping[str, int], known: Collection[str]) -> None:
    """`{"fault", "count"}` arms one of `known` in `faults` (the simulator counts it down as it plays it)."""

    @app.post("/_sandbox/faults")
    async def arm_fault(request: Request) -> JSONResponse:
        try:
            wanted = FaultRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(exc)
        if wanted.fault not in known:
            return JSONResponse({"error": "unknown_fault", "faults": sorted(known)}, status_code=422)
        faults[wanted.fault] = wanted.count
        return JSONResponse({"fault": wanted.fault, "remaining": wanted.count})
