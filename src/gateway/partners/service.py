"""Collection partners (§12), as the operator manages them: created with a secret shown once, the secret rotated
with an overlap, and enabled per merchant."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import isoformat
from gateway.crypto import random_token
from gateway.domain import KeyMode
from gateway.errors import NotFound, PartnerCodeTaken
from gateway.merchants.service import get_merchant
from gateway.partners import repository
from gateway.partners.auth import seal_secret
from gateway.partners.models import MerchantPartner, Partner
from gateway.partners.schemas import PartnerCreate
from gateway.runtime import Runtime


def new_secret() -> str:
    return "psk_" + random_token(40)


def partner_object(p: Partner, secret: str | None = None) -> dict[str, Any]:
    expires = p.previous_secret_expires_at
    document: dict[str, Any] = {
        "id": p.id,
        "object": "partner",
        "name": p.name,
        "code": p.code,
        "kind": p.kind.value,
        "livemode": p.livemode,
        "shows_full_names": p.shows_full_names,
        "previous_secret_expires_at": isoformat(expires) if expires is not None else None,
        "created_at": isoformat(p.created_at),
        "updated_at": isoformat(p.updated_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document


def merchant_partner_object(row: MerchantPartner) -> dict[str, Any]:
    return {
        "object": "merchant_partner",
        "merchant_id": row.merchant_id,
        "partner_id": row.partner_id,
        "enabled": row.enabled,
        "updated_at": isoformat(row.updated_at),
    }


def _code_taken(code: str) -> PartnerCodeTaken:
    return PartnerCodeTaken(
        f"A partner with code {code!r} already exists (codes are compared case-insensitively).",
        errors=[{"loc": ["body", "code"], "msg": "already taken"}],
    )


async def create_partner(session: AsyncSession, rt: Runtime, params: PartnerCreate) -> tuple[Partner, str]:
    """The new partner and its secret, which is stored encrypted and never shown again (only a rotation shows
    the next one)."""
    if await repository.code_taken(session, params.code):
        raise _code_taken(params.code)
    now = rt.clock.now()
    partner_id = rt.ids.new("ptn")
    secret = new_secret()
    partner = Partner(
        id=partner_id,
        name=params.name,
        code=params.code,
        kind=params.kind,
        livemode=params.mode is KeyMode.live,
        shows_full_names=params.shows_full_names,
        secret_encrypted=seal_secret(rt, partner_id, secret),
        created_at=now,
        updated_at=now,
    )
    if not await repository.add_unless_code_taken(session, partner):
        raise _code_taken(params.code)
    return partner, secret


async def get_partner(session: AsyncSession, partner_id: str, *, lock: bool = False) -> Partner:
    partner = await repository.get(session, partner_id, lock=lock)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.")
    return partner


async def list_partners(session: AsyncSession, limit: int, starting_after: str | None) -> tuple[list[Partner], bool]:
    return await repository.list_page(session, limit, starting_after)


async def rotate_secret(
    session: AsyncSession, rt: Runtime, partner_id: str, expire_old_after: int
) -> tuple[Partner, str]:
    """A new secret; the current one keeps signing for `expire_old_after` seconds (0: it stops at once). A secret
    older than the current one stops at once: only one rotation overlaps at a time, as for webhook endpoints."""
    partner = await get_partner(session, partner_id, lock=True)
    now = rt.clock.now()
    secret = new_secret()
    if expire_old_after > 0:
        partner.previous_secret_encrypted = partner.secret_encrypted
        partner.previous_secret_expires_at = now + timedelta(seconds=expire_old_after)
    else:
        partner.previous_secret_encrypted = None
        partner.previous_secret_expires_at = None
    partner.secret_encrypted = seal_secret(rt, partner.id, secret)
    partner.updated_at = now
    await session.flush()
    return partner, secret


async def set_merchant_partner(
    session: AsyncSession, rt: Runtime, merchant_id: str, partner_id: str, enabled: bool
) -> MerchantPartner:
    await get_merchant(session, merchant_id)
    await get_partner(session, partner_id)
    return await repository.set_enabled(session, merchant_id, partner_id, enabled, rt.clock.now())
