"""A fake gateway for the sandbox telco's tests: it answers verify-order from a table of bills, lists billers, and
records every result, checking each check_sum with the wire module (nothing unsigned is recorded as authentic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from gateway.adapters.telco import wire
from gateway.adapters.telco.sandbox_telco import SandboxTelco
from gateway.adapters.telco.simulator import TelcoSimulator, simulator_factory
from gateway.adapters.telco.wire import TelcoProfile
from gateway.adapters.testmode import SimulatorContext
from gateway.clock import ManualClock

ACCESS_CODE, HASH_KEY = "ACCESSCODE123", "HASHKEY456"
SANDBOX_MERCHANT = "SANDBOX01"
GATEWAY = "http://gateway.test"
SIMULATOR = "http://sim.test"


@dataclass
class FakeGateway:
    profile: TelcoProfile
    # (merchant_code, billcode) → (amount, customer name)
    bills: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    billers: list[dict[str, str]] = field(default_factory=list)
    verifies: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, str]] = field(default_factory=list)
    forged: list[dict[str, str]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    refuse_results: int = 0  # answer 01 (not stored) to this many results

    def sign(self, fields: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
        return {**fields, "check_sum": wire.sign(HASH_KEY, ACCESS_CODE, fields, names, self.profile.encoding)}

    def authentic(self, fields: dict[str, Any], names: tuple[str, ...]) -> bool:
        return wire.check_sum_matches(HASH_KEY, ACCESS_CODE, fields, names, self.profile.encoding)

    def app(self) -> FastAPI:
        app = FastAPI()
        base = f"/v1/providers/{self.profile.provider}"

        async def fields_of(request: Request) -> dict[str, str]:
            content_type = request.headers.get("content-type", "")
            self.content_types.append(content_type)
            body = await request.body()
            if content_type.startswith("application/json"):
                return {k: str(v) for k, v in orjson.loads(body).items()}
            return dict(parse_qsl(body.decode()))

        @app.post(f"{base}/verify")
        async def verify(request: Request) -> JSONResponse:
            fields = await fields_of(request)
            self.verifies.append(fields)
            if not self.authentic(fields, wire.VERIFY_SIGNED):
                return JSONResponse(self.sign({"error_code": wire.VERIFY_BAD_CHECKSUM}, wire.VERIFY_ANSWER_SIGNED))
            bill = self.bills.get((fields["merchant_code"], fields["billcode"]))
            answer = {k: fields[k] for k in ("billcode", "merchant_code", "order_id")}
            if bill is None or ("trans_amount" in fields and int(fields["trans_amount"]) != bill[0]):
                return JSONResponse(self.sign({**answer, "error_code": "01"}, wire.VERIFY_ANSWER_SIGNED))
            answer = {**answer, "error_code": "00", "trans_amount": str(bill[0])}
            return JSONResponse({**self.sign(answer, wire.VERIFY_ANSWER_SIGNED), "customer_name": bill[1]})

        @app.api_route(f"{base}/notifications", methods=["POST"])
        async def notifications(request: Request) -> JSONResponse:
            fields = await fields_of(request)
            if not self.authentic(fields, wire.RESULT_SIGNED):
                self.forged.append(fields)
                return JSONResponse(self.sign({"error_code": "01"}, wire.RESULT_ANSWER_SIGNED))
            code = wire.RESULT_STORED
            if self.refuse_results > 0:
                self.refuse_results -= 1
                code = wire.RESULT_NOT_STORED
            else:
                self.results.append(fields)
            answer = {"error_code": code, "merchant_code": fields["merchant_code"], "order_id": fields["order_id"]}
            return JSONResponse(
                {
                    **self.sign(answer, wire.RESULT_ANSWER_SIGNED),
                    "return_url": "",
                    "return_bill_code": "",
                    "return_other_info": "",
                }
            )

        @app.get(f"{base}/billers")
        async def billers(request: Request) -> JSONResponse:
            query = dict(request.query_params)
            if query.get("cmd") != wire.BILLERS_COMMAND or not self.authentic(query, wire.BILLERS_SIGNED):
                return JSONResponse({"error": "invalid_signature"}, status_code=401)
            return JSONResponse({"billers": self.billers})

        return app


@dataclass
class Harness:
    """The simulator under test, its fake gateway, a client to it and its clock."""

    gateway: FakeGateway
    telco: SandboxTelco
    simulator: TelcoSimulator
    client: httpx.AsyncClient
    clock: ManualClock
    app: FastAPI

    @property
    def profile(self) -> TelcoProfile:
        return self.gateway.profile

    def sign(self, fields: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
        return self.gateway.sign(fields, names)

    async def ussd(self, session_id: str, text: str, phone: str = "0987654321") -> str:
        response = await self.client.post(
            "/ussd",
            json={
                "session_id": session_id,
                "service_code": self.profile.ussd_service_code,
                "phone": phone,
                "text": text,
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        screen = response.text
        assert screen.startswith(("CON ", "END ")) and len(screen) <= 182, screen
        return screen

    async def dial(self, session_id: str, *inputs: str, phone: str = "0987654321") -> list[str]:
        """Every screen of a session: the first, then one per input."""
        screens = [await self.ussd(session_id, "", phone)]
        for i in range(1, len(inputs) + 1):
            screens.append(await self.ussd(session_id, "*".join(inputs[:i]), phone))
        return screens

    async def api(self, fields: dict[str, str]) -> dict[str, str]:
        response = await self.client.post(self.profile.api_path, data=fields)
        assert response.status_code == 200, response.text
        answer: dict[str, str] = response.json()
        return answer


def make_harness(profile: TelcoProfile, start: datetime | None = None) -> Harness:
    gateway = FakeGateway(profile)
    clock = ManualClock(start or datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app()), base_url=GATEWAY)
    ctx = SimulatorContext(
        settings={"merchant_code": SANDBOX_MERCHANT},
        secrets={"access_code": ACCESS_CODE, "hash_key": HASH_KEY},
        notification_url=f"{GATEWAY}/v1/providers/{profile.provider}/notifications",
        public_base_url=f"{GATEWAY}/sandbox/{profile.provider}",
        http=http,
        clock=clock,
    )
    app = simulator_factory(profile)(ctx)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SIMULATOR)
    return Harness(gateway, app.state.telco, app.state.simulator, client, clock, app)
