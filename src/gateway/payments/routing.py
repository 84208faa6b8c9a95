"""Which provider a payment goes to.

A merchant enables providers per method with a priority and amount limits (PUT /v1/merchants/{id}/providers/
{provider}). A payment without `provider` goes to the first enabled provider that takes its method, currency
and amount and whose circuit breaker is closed; a provider that keeps failing technically is skipped for a
cool-down, and the breaker lives in the database so every process agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import PaymentAdapter, ProviderDeclinedError, ProviderTechnicalError, StartResult
from gateway.adapters.registry import UnknownProvider
from gateway.auth_types import MerchantScope
from gateway.domain import PaymentMethod
from gateway.errors import AmountOutOfRange, CurrencyNotSupported, MethodNotAvailable, ValidationFailed
from gateway.merchants import repository as merchants
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.routing")

BREAKER_THRESHOLD = 3
BREAKER_COOL_DOWN = timedelta(seconds=60)


@dataclass(frozen=True)
class Candidate:
    adapter: PaymentAdapter
    priority: int
    configured: bool
    healthy: bool


async def candidates(
    session: AsyncSession,
    rt: Runtime,
    scope: MerchantScope,
    method: PaymentMethod,
    currency: str,
    amount: int,
    provider: str | None = None,
    exclude: tuple[str, ...] = (),
) -> list[Candidate]:
    """Every provider this payment may go to, best first; raises the reason when there is none."""
    if provider is not None:
        try:
            adapters = [rt.registry.get(provider)]
        except UnknownProvider:
            raise ValidationFailed.field(["body", "provider"], f"unknown provider {provider!r}") from None
        if method not in adapters[0].capabilities.methods:
            raise ValidationFailed.field(["body", "provider"], f"provider {provider} does not support method {method}")
    else:
        adapters = rt.registry.for_method(method)
    adapters = [a for a in adapters if a.name not in exclude]
    if not adapters:
        raise MethodNotAvailable(f"No provider for method {method} is available on this gateway.")
    accounts, open_breakers = await merchants.routing_state(session, rt.routing_cache, scope, rt.clock.now())
    found: list[Candidate] = []
    reasons: set[str] = set()
    for index, adapter in enumerate(adapters):
        caps, account = adapter.capabilities, accounts.get(adapter.name)
        low = max(caps.min_amount, account.min_amount or 0) if account else caps.min_amount
        high = min(caps.max_amount, account.max_amount or caps.max_amount) if account else caps.max_amount
        if account is not None and not account.enabled:
            reasons.add("disabled")
        elif currency not in caps.currencies:
            reasons.add("currency")
        elif not low <= amount <= high:
            reasons.add("amount")
        else:
            found.append(
                Candidate(
                    adapter,
                    account.priority if account else 100 + index,
                    configured=bool(account and account.settings),
                    healthy=adapter.name not in open_breakers,
                )
            )
    if not found:
        if "amount" in reasons:
            raise AmountOutOfRange(f"No enabled {method} provider accepts an amount of {amount}.")
        if "currency" in reasons:
            raise CurrencyNotSupported(f"No enabled {method} provider accepts {currency}.")
        raise MethodNotAvailable(f"No enabled provider for method {method}.")
    # Healthy before cooling down, configured before not (live mode), then the merchant's priority.
    found.sort(key=lambda c: (not c.healthy, scope.livemode and not c.configured, c.priority))
    return found


StartOutcome = StartResult | ProviderDeclinedError | ProviderTechnicalError


def certainly_nothing_created(outcome: StartOutcome) -> bool:
    """Only then may a payment move to another provider: never after a timeout once the request was sent."""
    if isinstance(outcome, ProviderTechnicalError):
        return outcome.certainly_not_created
    return isinstance(outcome, ProviderDeclinedError)


async def record_outcome(
    session: AsyncSession, rt: Runtime, provider: str, livemode: bool, outcome: StartOutcome
) -> None:
    now = rt.clock.now()
    if not isinstance(outcome, ProviderTechnicalError):
        # Only a process that has seen this provider fail resets its breaker: healthy traffic writes nothing.
        if (provider, livemode) not in rt.failing_providers:
            return
        rt.failing_providers.discard((provider, livemode))
        await merchants.reset_breaker(session, provider, livemode, now)
        return
    rt.failing_providers.add((provider, livemode))
    merchants.forget_routing(rt.routing_cache)
    await merchants.count_failure(
        session,
        provider,
        livemode,
        str(outcome)[:255],
        now,
        threshold=BREAKER_THRESHOLD,
        cool_down=BREAKER_COOL_DOWN,
    )
    log.warning("provider.technical_failure", provider=provider, error=str(outcome)[:200])
