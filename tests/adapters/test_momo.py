"""The MoMo adapter's wire format (PROVIDERS.md, "MoMo e-wallet API v2"): what it signs and how, and how it reads
every resultCode. Signatures are compared with HMACs computed here by hand from the documented field lists.

A MockTransport plays MoMo where the simulator cannot (codes and failures it never produces); the flows
through the real simulator are in tests/payments/test_momo_flow.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from gateway.adapters.base import (
    FundsReceived,
    InboundRequest,
    NotificationRejected,
    PaymentDeclined,
    PaymentLookup,
    ProviderContext,
    ProviderCredentials,
    ProviderDeclinedError,
    ProviderStatus,
    ProviderTechnicalError,
    RefundLookup,
    RefundOutcome,
    StartPayment,
    StartRefund,
)
from gateway.adapters.momo.adapter import MoMoAdapter, MoMoCredentials
from gateway.adapters.momo.wire import momo_signature
from gateway.clock import ManualClock
from gateway.domain import NotificationOutcome

PARTNER, ACCESS, SECRET = "MOMOTEST01", "acc-key-123", "sec-key-456"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CREDENTIALS = ProviderCredentials(
    livemode=True,
    merchant_id="mch_1",
    settings={"partner_code": PARTNER, "api_base_url": "https://momo.test"},
    secrets={"access_key": ACCESS, "secret_key": SECRET},
    base_url="https://momo.test",
)
adapter = MoMoAdapter()


def hand_hmac(raw: str) -> str:
    return hmac.new(SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()


Handler = Callable[[httpx.Request], httpx.Response]


def context(http: httpx.AsyncClient) -> ProviderContext:
    return ProviderContext(
        credentials=CREDENTIALS,
        http=http,
        notification_url="https://gw.test/v1/providers/momo/notifications",
        return_url="https://gw.test/v1/providers/momo/return",
        clock=ManualClock(NOW),
    )


def momo(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def answering(status: int = 200, **body: Any) -> tuple[Handler, list[dict[str, Any]]]:
    """A fake MoMo that records what it was sent and answers `body`."""
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append({"url": str(request.url), **orjson.loads(request.content)})
        return httpx.Response(status, json=body)

    return handler, sent


START = StartPayment(
    payment_id="pay_01JABC",
    amount=150000,
    currency="VND",
    reference="HĐ-2026/Bệnh viện 12",
    description=None,
    customer=None,
    return_url=None,
    expires_at=NOW,
    created_at=NOW,
)
CREATED: dict[str, Any] = {
    "partnerCode": PARTNER,
    "orderId": "pay_01JABC",
    "requestId": "pay_01JABC",
    "amount": 150000,
    "resultCode": 0,
    "message": "Thành công.",
    "payUrl": "https://momo.test/pay/pay_01JABC",
    "deeplink": "momo://app?action=payWithApp&orderId=pay_01JABC",
    "qrCodeUrl": "momo://qr/pay_01JABC",
}


# --- signatures ----------------------------------------------------------------------------------------


def test_signature_is_hmac_of_sorted_raw_pairs() -> None:
    fields = {"orderInfo": "Thanh toan A&B = c", "amount": 1000, "extraData": "", "accessKey": ACCESS}
    raw = f"accessKey={ACCESS}&amount=1000&extraData=&orderInfo=Thanh toan A&B = c"
    assert momo_signature(SECRET, fields) == hand_hmac(raw)


async def test_create_sends_and_signs_the_documented_fields() -> None:
    handler, sent = answering(**CREATED)
    async with momo(handler) as http:
        result = await adapter.start_payment(context(http), START)

    [request] = sent
    assert request["url"] == "https://momo.test/v2/gateway/api/create"
    assert request["orderInfo"] == "Thanh toan HD-2026/Benh vien 12"  # ASCII only
    raw = (
        f"accessKey={ACCESS}&amount=150000&extraData=&ipnUrl=https://gw.test/v1/providers/momo/notifications"
        "&orderId=pay_01JABC&orderInfo=Thanh toan HD-2026/Benh vien 12"
        f"&partnerCode={PARTNER}&redirectUrl=https://gw.test/v1/providers/momo/return"
        "&requestId=pay_01JABC&requestType=captureWallet"
    )
    assert request["signature"] == hand_hmac(raw)
    assert {k: request[k] for k in ("partnerCode", "requestId", "orderId", "amount", "lang", "extraData")} == {
        "partnerCode": PARTNER,
        "requestId": "pay_01JABC",
        "orderId": "pay_01JABC",
        "amount": 150000,
        "lang": "vi",
        "extraData": "",
    }
    assert "accessKey" not in request

    assert result.status is ProviderStatus.requires_action
    assert result.provider_reference == "pay_01JABC"
    assert result.next_action == {
        "type": "redirect",
        "url": CREATED["payUrl"],
        "deeplink": CREATED["deeplink"],
        "qr_code_url": CREATED["qrCodeUrl"],
    }
    assert result.provider_data == {"order_id": "pay_01JABC"}


async def test_query_signs_access_key_order_partner_and_a_fresh_request_id() -> None:
    handler, sent = answering(resultCode=1000, message="waiting", orderId="pay_01JABC")
    lookup = PaymentLookup("pay_01JABC", "pay_01JABC", {"order_id": "pay_01JABC"}, 150000, NOW)
    async with momo(handler) as http:
        await adapter.fetch_status(context(http), lookup)
        await adapter.fetch_status(context(http), lookup)

    first, second = sent
    assert first["url"] == "https://momo.test/v2/gateway/api/query"
    assert first["requestId"] != second["requestId"]
    raw = f"accessKey={ACCESS}&orderId=pay_01JABC&partnerCode={PARTNER}&requestId={first['requestId']}"
    assert first["signature"] == hand_hmac(raw)


async def test_refund_signs_the_documented_fields_with_a_new_order_id() -> None:
    handler, sent = answering(resultCode=0, message="ok", transId=4088000099, amount=50000)
    refund = StartRefund(
        refund_id="re_01JXYZ",
        payment_id="pay_01JABC",
        amount=50000,
        currency="VND",
        payment_amount_received=150000,
        payment_provider_reference="pay_01JABC",
        payment_provider_data={"order_id": "pay_01JABC"},
        payer={},
        reason="Hoàn phí khám",
        provider_transaction_id="4088000001",
    )
    async with momo(handler) as http:
        result = await adapter.refund(context(http), refund)

    [request] = sent
    assert request["url"] == "https://momo.test/v2/gateway/api/refund"
    assert (request["orderId"], request["requestId"], request["transId"]) == ("re_01JXYZ", "re_01JXYZ", 4088000001)
    raw = (
        f"accessKey={ACCESS}&amount=50000&description=Hoan phi kham&orderId=re_01JXYZ"
        f"&partnerCode={PARTNER}&requestId=re_01JXYZ&transId=4088000001"
    )
    assert request["signature"] == hand_hmac(raw)
    assert (result.status, result.provider_reference) == (RefundOutcome.succeeded, "4088000099")


def signed_result(**overrides: Any) -> dict[str, Any]:
    """An IPN as MoMo sends it, signed by hand over the documented field list."""
    fields: dict[str, Any] = {
        "partnerCode": PARTNER,
        "orderId": "pay_01JABC",
        "requestId": "pay_01JABC",
        "amount": 150000,
        "orderInfo": "Thanh toan HD-1",
        "orderType": "momo_wallet",
        "transId": 4088000001,
        "resultCode": 0,
        "message": "Thành công.",
        "payType": "qr",
        "responseTime": 1795341600000,
        "extraData": "",
        **overrides,
    }
    raw = (
        f"accessKey={ACCESS}&amount={fields['amount']}&extraData={fields['extraData']}"
        f"&message={fields['message']}&orderId={fields['orderId']}&orderInfo={fields['orderInfo']}"
        f"&orderType={fields['orderType']}&partnerCode={fields['partnerCode']}&payType={fields['payType']}"
        f"&requestId={fields['requestId']}&responseTime={fields['responseTime']}"
        f"&resultCode={fields['resultCode']}&transId={fields['transId']}"
    )
    return {**fields, "signature": hand_hmac(raw)}


def ipn(fields: dict[str, Any]) -> InboundRequest:
    return InboundRequest("POST", {}, {"content-type": "application/json"}, orjson.dumps(fields))


def test_ipn_signature_verifies_and_names_the_account() -> None:
    request = ipn(signed_result())
    assert adapter.notification_account(request) == PARTNER
    [event] = adapter.verify_notification(request, CREDENTIALS, NOW)
    assert event == FundsReceived(
        provider_transaction_id="4088000001",
        payment_references=["pay_01JABC"],
        amount=150000,
        currency="VND",
        account_key=PARTNER,
        payer={"pay_type": "qr"},
    )


@pytest.mark.parametrize(
    "tamper",
    [
        {"amount": 1000},
        {"resultCode": 1006},
        {"transId": 4088000002},
        {"signature": "0" * 64},
        {"signature": "ü" * 64},
    ],
)
def test_tampered_ipn_is_rejected(tamper: dict[str, Any]) -> None:
    with pytest.raises(NotificationRejected):
        adapter.verify_notification(ipn({**signed_result(), **tamper}), CREDENTIALS, NOW)


def test_ipn_missing_a_signed_field_or_not_json_is_rejected() -> None:
    fields = signed_result()
    del fields["payType"]
    with pytest.raises(NotificationRejected):
        adapter.verify_notification(ipn(fields), CREDENTIALS, NOW)
    with pytest.raises(NotificationRejected):
        adapter.verify_notification(InboundRequest("POST", {}, {}, b"not json"), CREDENTIALS, NOW)


def test_ipn_signed_for_another_partner_code_is_rejected() -> None:
    with pytest.raises(NotificationRejected, match="partnerCode"):
        adapter.verify_notification(ipn(signed_result(partnerCode="SOMEONEELSE")), CREDENTIALS, NOW)


def test_browser_return_is_verified_from_the_query() -> None:
    query = {k: str(v) for k, v in signed_result().items()}
    request = InboundRequest("GET", query, {}, b"")
    assert adapter.notification_account(request) == PARTNER
    assert adapter.verify_return(request, CREDENTIALS, NOW) == ["pay_01JABC"]
    with pytest.raises(NotificationRejected):
        adapter.verify_return(InboundRequest("GET", {**query, "amount": "1000"}, {}, b""), CREDENTIALS, NOW)
    assert urlencode(query)  # every value survives a URL round trip as a string


# --- resultCode tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 7000, 7002])
def test_ipn_still_pending_applies_nothing(code: int) -> None:
    assert adapter.verify_notification(ipn(signed_result(resultCode=code, transId=0)), CREDENTIALS, NOW) == []


def test_ipn_9000_authorized_is_funds() -> None:
    [event] = adapter.verify_notification(ipn(signed_result(resultCode=9000)), CREDENTIALS, NOW)
    assert isinstance(event, FundsReceived) and event.amount == 150000


@pytest.mark.parametrize(
    ("code", "trans_id", "failure_code", "transaction_id"),
    [
        (1001, 4088000001, "insufficient_funds", "4088000001"),
        (1005, 0, "expired", "pay_01JABC:1005"),
        (1006, 4088000001, "payer_declined", "4088000001"),
        (1017, 0, "canceled_by_merchant", "pay_01JABC:1017"),
        (1004, 0, "momo_1004", "pay_01JABC:1004"),
    ],
)
def test_ipn_decline_codes(code: int, trans_id: int, failure_code: str, transaction_id: str) -> None:
    [event] = adapter.verify_notification(ipn(signed_result(resultCode=code, transId=trans_id)), CREDENTIALS, NOW)
    assert isinstance(event, PaymentDeclined)
    assert (event.failure_code, event.provider_transaction_id, event.amount) == (
        failure_code,
        transaction_id,
        150000,
    )
    assert event.payment_references == ["pay_01JABC"]


@pytest.mark.parametrize("code", [41, 43, 99, 7000])
async def test_create_with_unknown_outcome_is_technical(code: int) -> None:
    handler, _ = answering(resultCode=code, message="?")
    async with momo(handler) as http:
        with pytest.raises(ProviderTechnicalError) as raised:
            await adapter.start_payment(context(http), START)
    assert raised.value.certainly_not_created is False


@pytest.mark.parametrize("code", [11, 13, 21, 22])
async def test_create_refused_by_momo_is_declined(code: int) -> None:
    handler, _ = answering(status=400, resultCode=code, message="refused")
    async with momo(handler) as http:
        with pytest.raises(ProviderDeclinedError) as raised:
            await adapter.start_payment(context(http), START)
    assert (raised.value.code, raised.value.message) == (f"momo_{code}", "refused")


@pytest.mark.parametrize(
    ("response", "certain"),
    [
        (httpx.Response(503, text="<html>Service Unavailable</html>"), True),
        (httpx.Response(502, text="Bad Gateway"), True),
        (httpx.Response(503, json={"resultCode": 99, "message": "busy"}), False),
        (httpx.Response(500, text="Internal Server Error"), False),
        (httpx.Response(504, text="Gateway Timeout"), False),
    ],
)
async def test_create_http_failures(response: httpx.Response, certain: bool) -> None:
    async with momo(lambda _: response) as http:
        with pytest.raises(ProviderTechnicalError) as raised:
            await adapter.start_payment(context(http), START)
    assert raised.value.certainly_not_created is certain


@pytest.mark.parametrize(
    ("failure", "certain"),
    [(httpx.ConnectError("refused"), True), (httpx.ReadTimeout("slow"), False)],
)
async def test_create_transport_failures(failure: Exception, certain: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with momo(handler) as http:
        with pytest.raises(ProviderTechnicalError) as raised:
            await adapter.start_payment(context(http), START)
    assert raised.value.certainly_not_created is certain


@pytest.mark.parametrize(
    ("code", "status", "received", "transaction_id", "failure_code"),
    [
        (0, ProviderStatus.succeeded, 150000, "4088000001", None),
        (9000, ProviderStatus.succeeded, 150000, "4088000001", None),
        (1000, ProviderStatus.requires_action, 0, None, None),
        (7000, ProviderStatus.processing, 0, None, None),
        (7002, ProviderStatus.processing, 0, None, None),
        (1001, ProviderStatus.failed, 0, "4088000001", "insufficient_funds"),
        (1005, ProviderStatus.failed, 0, "4088000001", "expired"),
        (1006, ProviderStatus.failed, 0, "4088000001", "payer_declined"),
        (1017, ProviderStatus.failed, 0, "4088000001", "canceled_by_merchant"),
        (42, ProviderStatus.failed, 0, "4088000001", "momo_42"),
    ],
)
async def test_query_codes(
    code: int, status: ProviderStatus, received: int, transaction_id: str | None, failure_code: str | None
) -> None:
    handler, _ = answering(resultCode=code, message="m", amount=150000, transId=4088000001)
    async with momo(handler) as http:
        result = await adapter.fetch_status(context(http), PaymentLookup("pay_01JABC", None, {}, 150000, NOW))
    assert (result.status, result.amount_received, result.provider_transaction_id, result.failure_code) == (
        status,
        received,
        transaction_id,
        failure_code,
    )


@pytest.mark.parametrize("response", [httpx.Response(400, json={"resultCode": 13}), httpx.Response(503)])
async def test_query_errors_are_technical(response: httpx.Response) -> None:
    async with momo(lambda _: response) as http:
        with pytest.raises(ProviderTechnicalError):
            await adapter.fetch_status(context(http), PaymentLookup("pay_01JABC", None, {}, 150000, NOW))


REFUND = StartRefund(
    refund_id="re_1",
    payment_id="pay_01JABC",
    amount=50000,
    currency="VND",
    payment_amount_received=150000,
    payment_provider_reference="pay_01JABC",
    payment_provider_data={"order_id": "pay_01JABC"},
    payer={},
    reason=None,
    provider_transaction_id="4088000001",
)


@pytest.mark.parametrize("code", [1080, 1081, 1088])
async def test_refund_refused(code: int) -> None:
    handler, _ = answering(resultCode=code, message="no")
    async with momo(handler) as http:
        with pytest.raises(ProviderDeclinedError) as raised:
            await adapter.refund(context(http), REFUND)
    assert raised.value.code == f"momo_{code}"


async def test_refund_pending_unknown_and_unreachable() -> None:
    handler, _ = answering(resultCode=7000, message="processing")
    async with momo(handler) as http:
        assert (await adapter.refund(context(http), REFUND)).status is RefundOutcome.pending
    handler, _ = answering(resultCode=99, message="unknown")
    async with momo(handler) as http:
        with pytest.raises(ProviderTechnicalError) as unknown:
            await adapter.refund(context(http), REFUND)
    assert unknown.value.certainly_not_created is False

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with momo(refuse) as http:
        with pytest.raises(ProviderTechnicalError) as unreachable:
            await adapter.refund(context(http), REFUND)
    assert unreachable.value.certainly_not_created is True


async def test_refund_status_reads_this_refunds_entry() -> None:
    handler, sent = answering(
        resultCode=0,
        message="ok",
        refundTrans=[
            {"orderId": "re_0", "amount": 1000, "resultCode": 0, "transId": 1},
            {"orderId": "re_1", "amount": 50000, "resultCode": 0, "transId": 4088000077},
            {"orderId": "re_2", "amount": 2000, "resultCode": 1080, "transId": 3},
        ],
    )
    lookup = RefundLookup("re_1", "pay_01JABC", 50000, None, "pay_01JABC", {"order_id": "pay_01JABC"}, "1", NOW)
    async with momo(handler) as http:
        found = await adapter.fetch_refund_status(context(http), lookup)
        failed = await adapter.fetch_refund_status(context(http), replace(lookup, refund_id="re_2"))
        missing = await adapter.fetch_refund_status(context(http), replace(lookup, refund_id="re_9"))
    assert sent[0]["url"] == "https://momo.test/v2/gateway/api/refund/query"
    raw = f"accessKey={ACCESS}&orderId=pay_01JABC&partnerCode={PARTNER}&requestId={sent[0]['requestId']}"
    assert sent[0]["signature"] == hand_hmac(raw)
    assert (found.status, found.provider_reference) == (RefundOutcome.succeeded, "4088000077")
    assert (failed.status, failed.failure_code) == (RefundOutcome.failed, "momo_1080")
    assert missing.status is RefundOutcome.failed


def test_acknowledgements() -> None:
    for outcome in ("applied", "duplicate", "unmatched", "amount_mismatch"):
        ack = adapter.acknowledge(NotificationOutcome(outcome))
        assert (ack.status_code, ack.body) == (204, b"")
    rejected = adapter.acknowledge(NotificationOutcome.rejected)
    assert (rejected.status_code, orjson.loads(rejected.body)) == (400, {"error": "invalid_signature"})
    assert adapter.acknowledge(NotificationOutcome.error).status_code == 500


def test_credentials_model_and_account_key() -> None:
    creds = MoMoCredentials.model_validate(
        {"partner_code": PARTNER, "access_key": ACCESS, "secret_key": SECRET, "api_base_url": "https://momo.test"}
    )
    assert creds.secret_key.get_secret_value() == SECRET
    with pytest.raises(ValueError):
        MoMoCredentials.model_validate({**creds.model_dump(), "api_base_url": "ftp://x", "extra": 1})
    assert adapter.account_key({"partner_code": PARTNER}) == PARTNER
