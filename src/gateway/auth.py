"""Who is calling: a merchant's API key (test or live) or the operator's admin token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.auth_types import MerchantScope
from gateway.crypto import constant_time_equals, hash_api_key
from gateway.errors import Forbidden, TestModeDisabled, Unauthenticated
from gateway.merchants.repository import scope_of_api_key
from gateway.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="A merchant key (sk_test_… / sk_live_…) or the admin token")


@dataclass(frozen=True)
class Admin:
    # The admin token's Idempotency-Keys share one scope, whichever operator route they are sent to.
    idempotency_scope: ClassVar[str] = "admin"


Principal = MerchantScope | Admin


async def get_runtime(request: Request) -> Runtime:  # async: a plain def would cost a thread hop per request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(
    rt: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("Send Authorization: Bearer <API key>.", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    admin = rt.settings.admin_token
    if admin is not None and constant_time_equals(token, admin.get_secret_value()):
        return Admin()
    if token.startswith(("sk_test_", "sk_live_")):
        secret_hash = hash_api_key(token)
        cached = rt.api_keys.get(secret_hash)
        if cached is not None:
            return cached
        async with rt.db.transaction() as session:
            scope = await scope_of_api_key(session, secret_hash)
        if scope is not None:
            rt.api_keys.put(secret_hash, scope)
            return scope
    raise Unauthenticated("The API key is not valid or was revoked.", headers={"WWW-Authenticate": "Bearer"})


async def require_merchant(rt: RuntimeDep, principal: Annotated[Principal, Depends(authenticate)]) -> MerchantScope:
    if isinstance(principal, Admin):
        raise Forbidden(
            "The admin token is accepted only on /v1/merchants and the operator routes; use a merchant key."
        )
    if not principal.livemode and not rt.settings.sandbox:
        raise TestModeDisabled("Test mode is disabled on this gateway (GATEWAY_SANDBOX=false).")
    return principal


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Admin:
    if not isinstance(principal, Admin):
        raise Forbidden("This route needs the operator's admin token.")
    return principal


async def require_merchant_or_admin(
    rt: RuntimeDep, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """Routes both may read (the operator's, which merchants need too: the organisation units, their reports)."""
    if isinstance(principal, MerchantScope) and not principal.livemode and not rt.settings.sandbox:
        raise TestModeDisabled("Test mode is disabled on this gateway (GATEWAY_SANDBOX=false).")
    return principal


MerchantDep = Annotated[MerchantScope, Depends(require_merchant)]
PrincipalDep = Annotated[Principal, Depends(require_merchant_or_admin)]
AdminDep = Annotated[Admin, Depends(require_admin)]
