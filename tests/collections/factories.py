"""Partners, their enablement and billers' codes written straight to the database (the admin API is another
branch's), and a signed client for the partner routes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from gateway.collections.client import PartnerClient
from gateway.domain import PartnerKind
from gateway.partners.auth import seal_secret
from gateway.partners.models import MerchantPartner, Partner
from gateway.runtime import Runtime
from tests.allocation.factories import execute, make_customer
from tests.conftest import MerchantHandle

BILLER = "EVNQN"


@dataclass
class PartnerHandle:
    id: str
    code: str
    secret: str

    def client(self, http: httpx.AsyncClient, rt: Runtime) -> PartnerClient:
        return PartnerClient(http, self.id, self.secret, now=lambda: rt.clock.now().timestamp())


async def make_partner(
    rt: Runtime,
    code: str = "VCB",
    *,
    kind: PartnerKind = PartnerKind.bank,
    livemode: bool = False,
    shows_full_names: bool = False,
) -> PartnerHandle:
    now = rt.clock.now()
    partner_id = rt.ids.new("ptn")
    secret = "psk_" + secrets.token_urlsafe(32)
    async with rt.db.transaction() as session:
        session.add(
            Partner(
                id=partner_id,
                name=f"Partner {code}",
                code=code,
                kind=kind,
                livemode=livemode,
                shows_full_names=shows_full_names,
                secret_encrypted=seal_secret(rt, partner_id, secret),
                previous_secret_encrypted=None,
                previous_secret_expires_at=None,
                created_at=now,
                updated_at=now,
            )
        )
    return PartnerHandle(partner_id, code, secret)


async def enable_partner(rt: Runtime, merchant: MerchantHandle, partner: PartnerHandle, enabled: bool = True) -> None:
    now = rt.clock.now()
    async with rt.db.transaction() as session:
        session.add(
            MerchantPartner(
                merchant_id=merchant.id, partner_id=partner.id, enabled=enabled, created_at=now, updated_at=now
            )
        )


async def set_biller_code(rt: Runtime, merchant: MerchantHandle, code: str = BILLER) -> None:
    await execute(rt, "UPDATE merchants SET biller_code = :code WHERE id = :id", code=code, id=merchant.id)


async def biller_with_partner(
    rt: Runtime, merchant: MerchantHandle, code: str = "VCB", biller: str = BILLER, **partner: object
) -> PartnerHandle:
    """The merchant named `biller`, letting a new partner collect for it."""
    await set_biller_code(rt, merchant, biller)
    handle = await make_partner(rt, code, **partner)  # type: ignore[arg-type]
    await enable_partner(rt, merchant, handle)
    return handle


async def make_live_customer(
    rt: Runtime, merchant: MerchantHandle, code: str = "PA01000123456", name: str = "Nguyễn Văn An"
) -> str:
    return await make_customer(rt, merchant, code, name, livemode=True)
