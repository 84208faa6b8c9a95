"""All simulators in one ASGI app: mounted at /sandbox inside the gateway, or run alone (`gateway sandbox`)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from gateway.clock import Clock
from gateway.crypto import SecretBox
from gateway.sandbox.accounts import SANDBOX_SETTINGS, sandbox_secrets
from gateway.sandbox.momo_wallet import create_momo_simulator
from gateway.sandbox.vietqr_bank import SandboxBank
from gateway.sandbox.vnpay_gateway import create_vnpay_simulator


def create_sandbox_app(secret_box: SecretBox, gateway_url: str, http: httpx.AsyncClient, clock: Clock) -> FastAPI:
    app = FastAPI(title="Payment gateway sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    notify = f"{gateway_url.rstrip('/')}/v1/providers"
    vietqr = SANDBOX_SETTINGS["vietqr"]
    bank = SandboxBank(
        bank_bin=vietqr["bank_bin"],
        account_number=vietqr["account_number"],
        account_name=vietqr["account_name"],
        webhook_secret=sandbox_secrets(secret_box, "vietqr")["webhook_secret"],
        api_key=sandbox_secrets(secret_box, "vietqr")["api_key"],
        notify_url=f"{notify}/vietqr/notifications",
        http=http,
        clock=clock,
    )
    app.mount("/vietqr", bank.build_app())
    vnpay = SANDBOX_SETTINGS["vnpay"]
    app.mount(
        "/vnpay",
        create_vnpay_simulator(
            tmn_code=vnpay["tmn_code"],
            hash_secret=sandbox_secrets(secret_box, "vnpay")["hash_secret"],
            ipn_url=f"{notify}/vnpay/notifications",
            http=http,
            clock=clock,
        ),
    )
    momo = SANDBOX_SETTINGS["momo"]
    momo_secrets = sandbox_secrets(secret_box, "momo")
    app.mount(
        "/momo",
        create_momo_simulator(
            partner_code=momo["partner_code"],
            access_key=momo_secrets["access_key"],
            secret_key=momo_secrets["secret_key"],
            public_base_url=f"{gateway_url.rstrip('/')}/sandbox/momo",
            http=http,
            clock=clock,
        ),
    )
    app.state.simulators = {"vietqr": bank}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
