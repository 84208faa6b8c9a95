from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.adapters.testmode import Sandboxed, SandboxPayerFailed
from gateway.api_support import (
    IDEMPOTENT,
    JSON_BODY,
    MERCHANT_KEY,
    IdempotencyKeyHeader,
    idempotency_key,
    idempotent,
    problems,
    stored,
)
from gateway.auth import MerchantDep, RuntimeDep
from gateway.customers import repository as customers
from gateway.customers.service import transfer_codes
from gateway.db import UnitOfWork
from gateway.domain import PaymentMethod, PaymentStatus
from gateway.errors import InvalidState, NotFound, OutcomeNotSupported, SandboxFailed
from gateway.idempotency.service import StoredResponse
from gateway.payments import repository as payments_repo
from gateway.payments import service as payments
from gateway.payments.schemas import PaymentObject, TestPayOutcome, TestTransfer

router = APIRouter(prefix="/v1/test-helpers", tags=["test helpers"])


def payer_reference(subject_id: str, idempotency_key: str) -> str:
    """What the played payer's app calls its request, stable across retries of one test-helper request."""
    return "tp_" + hashlib.sha256(f"{subject_id}:{idempotency_key}".encode()).hexdigest()[:32]


_SETTLED = frozenset({PaymentStatus.succeeded.value, PaymentStatus.failed.value})


@router.post(
    "/payments/{payment_id}/pay",
    response_model=PaymentObject,
    summary="Act as the payer at the provider's sandbox (test mode only)",
    responses=problems(
        *MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, NotFound, InvalidState, OutcomeNotSupported, SandboxFailed
    ),
    openapi_extra=idempotency_key(required=False),
    description="The simulator then notifies the gateway through the same signed callback path as the real "
    "provider. `amount` defaults to what is still owed. Answers 404 for live keys.",
)
async def pay(
    payment_id: str,
    params: TestPayOutcome,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    if scope.livemode or rt.sandbox_base_url is None:
        raise NotFound("Test helpers exist only in test mode.")
    sandbox_url = rt.sandbox_base_url

    async def operation(uow: UnitOfWork, resume: str | None) -> StoredResponse:
        payment = await payments.get_payment(uow.session, rt, scope, payment_id)
        if resume is not None and payment.status == PaymentStatus.succeeded.value:
            # An earlier attempt under this key reached the payer's step and crashed after it: it paid.
            return stored(payments.payment_object(payment))
        if payment.provider == payments.COUNTER:
            raise OutcomeNotSupported("A counter payment was paid at the counter: there is no payer to play.")
        if payment.method is PaymentMethod.partner:
            raise OutcomeNotSupported("A partner's collection was paid to the partner: there is no payer to play.")
        adapter = rt.registry.get(payment.provider)
        if not isinstance(adapter, Sandboxed):
            raise OutcomeNotSupported(f"The {payment.provider} sandbox has no payer simulation.")
        if payment.provider_reference is None:
            raise InvalidState(f"Payment {payment.id} is {payment.status}: confirm it before paying.")
        if payment.status in _SETTLED and not adapter.capabilities.accumulates_funds:
            # A card or wallet order is paid (or failed) once; a bank account takes any further transfer, and a
            # canceled or expired payment still takes late funds.
            raise InvalidState(f"Payment {payment.id} is {payment.status}: a {payment.method} order is paid once.")
        amount = params.amount if params.amount is not None else payment.amount - payment.amount_received
        if amount <= 0:
            raise InvalidState(f"Payment {payment.id} owes nothing; pass an amount to overpay.")
        provider_data = dict(payment.provider_data)
        if idempotency_key is not None:
            # A retry after a crash sends the same transfer again, which the bank knows, never a second one.
            provider_data["payer_reference"] = payer_reference(payment.id, idempotency_key)
        # The simulator calls back into this gateway: hold no transaction (and no SQLite write lock) meanwhile.
        await uow.checkpoint(payment.id)
        try:
            await adapter.sandbox.pay(
                rt.provider_http, f"{sandbox_url}/{payment.provider}", provider_data, params.outcome, amount
            )
        except SandboxPayerFailed as exc:
            raise SandboxFailed(str(exc)) from exc
        session = await uow.resume()
        return stored(payments.payment_object(await payments.get_payment(session, rt, scope, payment_id)))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.post(
    "/customers/{customer_id}/transfer",
    response_model=PaymentObject,
    summary="Send a transfer by a customer's static QR from the sandbox bank (test mode only)",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, NotFound, OutcomeNotSupported, SandboxFailed),
    openapi_extra=idempotency_key(required=False),
    description="As a payer scanning the QR printed on the customer's bills would: the sandbox bank sends the "
    "merchant's account a transfer carrying the customer's payment code, through the same signed notification "
    "path as a real bank. Answers the payment the transfer became (succeeded, `bill_id` null), its funds "
    "allocated to the customer's bills oldest due first and the rest to its balance. 404 for live keys.",
)
async def transfer_to_customer(
    customer_id: str,
    params: TestTransfer,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    if scope.livemode or rt.sandbox_base_url is None:
        raise NotFound("Test helpers exist only in test mode.")
    sandbox_url = rt.sandbox_base_url

    async def operation(uow: UnitOfWork, resume: str | None) -> StoredResponse:
        customer = await customers.get(uow.session, scope, customer_id)
        if customer is None:
            raise NotFound(f"No customer {customer_id}.")
        bank = transfer_codes(rt)
        if bank is None or not isinstance(bank, Sandboxed):
            raise OutcomeNotSupported("No bank-transfer sandbox is installed.")
        code = customer.payment_code
        await uow.checkpoint(customer.id)  # the sandbox calls back into this gateway: hold no transaction
        try:
            transaction_id = await bank.send_sandbox_transfer(
                rt.provider_http,
                f"{sandbox_url}/{bank.name}",
                bank.sandbox.settings,
                code,
                params.amount,
                payer_reference(customer.id, idempotency_key) if idempotency_key is not None else None,
            )
        except SandboxPayerFailed as exc:
            raise SandboxFailed(str(exc)) from exc
        session = await uow.resume()
        payment = await payments_repo.by_funds(session, bank.name, False, transaction_id)
        if payment is None:
            raise SandboxFailed("The transfer arrived but became no payment.")
        return stored(payments.payment_object(payment))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)
