"""Who is calling /v1/collect: the partner whose secret signed the request, or a 401 `invalid_signature`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import PartnerSignatureInvalid
from gateway.partners.models import Partner
from gateway.partners.signing import (
    PARTNER_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
    timestamp_fresh,
)
from gateway.runtime import Runtime


def secret_context(partner_id: str) -> str:
    # Bound into the ciphertext: a secret copied to another partner's row does not decrypt.
    return f"partner:{partner_id}"


def seal_secret(rt: Runtime, partner_id: str, secret: str) -> str:
    return rt.secret_box.encrypt(secret, context=secret_context(partner_id))


def accepted_secrets(rt: Runtime, partner: Partner) -> list[str]:
    """The secrets that may sign this partner's requests now: the current one, and the previous one until the
    rotation's overlap expires."""
    context = secret_context(partner.id)
    found = [rt.secret_box.decrypt(partner.secret_encrypted, context=context)]
    expires = partner.previous_secret_expires_at
    if partner.previous_secret_encrypted and expires is not None and expires > rt.clock.now():
        found.append(rt.secret_box.decrypt(partner.previous_secret_encrypted, context=context))
    return found


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def claimed_partner_id(self) -> str | None:
        value = self.headers.get(PARTNER_ID_HEADER)
        return value[:40] if value else None


async def authenticate(session: AsyncSession, rt: Runtime, request: SignedRequest) -> Partner:
    """The partner that signed `request`; PartnerSignatureInvalid for an unknown partner, a missing or wrong
    signature, or a timestamp more than 300 s away (all answered alike: a caller learns nothing from which)."""
    partner_id = request.claimed_partner_id
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not partner_id or not signature or not timestamp_fresh(timestamp, rt.clock.now().timestamp()):
        raise PartnerSignatureInvalid("The request's X-Partner-Id, X-Timestamp or X-Signature does not hold.")
    partner = await session.get(Partner, partner_id)
    if partner is None or not signature_matches(
        accepted_secrets(rt, partner), signature, timestamp, request.method, request.path, request.body
    ):
        raise PartnerSignatureInvalid("The request's X-Partner-Id, X-Timestamp or X-Signature does not hold.")
    return partner
