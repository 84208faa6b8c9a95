"""The VNPAY adapter on its own (PROVIDERS.md, "VNPAY payment gateway"): the published hash vector, the signed
payment URL, GMT+7 dates whatever the server's zone, the IPN and its answers, and the merchant API's
|-joined checksums, answered by a stub VNPAY."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
import pytest
from pydantic import ValidationError

from gateway.adapters.base import (
    FundsReceived,
    InboundRequest,
    NotificationRejected,
    PaymentAdapter,
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
from gateway.adapters.vnpay.adapter import VNPayAdapter
from gateway.adapters.vnpay.wire import QUERYDR_RESPONSE_FIELDS, REFUND_RESPONSE_FIELDS, pipe_hash, secure_hash
from gateway.clock import ManualClock
from gateway.domain import NotificationOutcome

SECRET = "VNPAYTESTSECRET0123456789ABCDEF"
TMN = "TESTTMN1"
BASE = "https://vnpay.example"
RETURN_URL = "https://gw.example/v1/providers/vnpay/return"
CREATED = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)  # 17:00 in Hanoi
NOW = datetime(2026, 11, 23, 2, 30, 15, tzinfo=UTC)  # 09:30:15 in Hanoi

Handler = Callable[[httpx.Request], httpx.Response]


def hmac512(secret: str, data: str) -> str:
    return hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


def credentials(**settings: str) -> ProviderCredentials:
    return ProviderCredentials(
        livemode=True,
        merchant_id="mch_1",
        settings={"tmn_code": TMN, **settings},
        secrets={"hash_secret": SECRET},
        base_url=BASE,
    )


def context(handler: Handler | None = None, **settings: str) -> ProviderContext:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network call expected: {request.url}")

    return ProviderContext(
        credentials=credentials(**settings),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler or refuse)),
        notification_url="https://gw.example/v1/providers/vnpay/notifications",
        return_url=RETURN_URL,
        clock=ManualClock(NOW),
    )


def start_request(**overrides: Any) -> StartPayment:
    values: dict[str, Any] = {
        "payment_id": "pay_01JDXYZABCDEFGHJKMNPQRSTVW",
        "amount": 150000,
        "currency": "VND",
        "reference": "HĐ-2026/Đà Nẵng #12",
        "description": None,
        "customer": None,
        "return_url": "https://his.example.vn/done",
        "expires_at": CREATED + timedelta(minutes=15),
        "created_at": CREATED,
    }
    values.update(overrides)
    return StartPayment(**values)


def url_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def ipn(secret: str = SECRET, **overrides: str) -> InboundRequest:
    fields = {
        "vnp_Amount": "15000000",
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14422574",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": "Thanh toan HD-2026",
        "vnp_PayDate": "20261122170512",
        "vnp_ResponseCode": "00",
        "vnp_TmnCode": TMN,
        "vnp_TransactionNo": "14422574",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": "01JDXYZABCDEFGHJKMNPQRSTVW",
    }
    fields.update(overrides)
    fields["vnp_SecureHash"] = secure_hash(secret, fields)
    return InboundRequest(method="GET", query=fields, headers={}, body=b"")


def refund_request(**overrides: Any) -> StartRefund:
    values: dict[str, Any] = {
        "refund_id": "re_01JDXYZREFUND0000000000000",
        "payment_id": "pay_01JDXYZABCDEFGHJKMNPQRSTVW",
        "amount": 50000,
        "currency": "VND",
        "payment_amount_received": 150000,
        "payment_provider_reference": "01JDXYZABCDEFGHJKMNPQRSTVW",
        "payment_provider_data": {"txn_ref": "01JDXYZABCDEFGHJKMNPQRSTVW", "create_date": "20261122170000"},
        "payer": {},
        "reason": None,
        "provider_transaction_id": "14422574",
    }
    values.update(overrides)
    return StartRefund(**values)


def signed_answer(fields: tuple[str, ...], **values: str) -> httpx.Response:
    answer = {name: values.get(name, "") for name in fields}
    answer["vnp_SecureHash"] = pipe_hash(SECRET, fields, answer)
    return httpx.Response(200, json=answer)


class Recorder:
    """A stub merchant API answering each call with `answer(body)` and keeping what it was sent."""

    def __init__(self, answer: Callable[[dict[str, Any]], httpx.Response]) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.urls.append(str(request.url))
        return self.answer(body)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the process in another time zone than Vietnam's."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    assert time.localtime(0).tm_hour != 7  # really not GMT+7
    yield
    monkeypatch.undo()
    time.tzset()


# --- the algorithm -------------------------------------------------------------------------------------


def test_secure_hash_reproduces_the_published_vector() -> None:
    params = {
        "vnp_Amount": "1000000",
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14422574",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": "Thanh toan don hang 2024-05-21T02:17:31.249Z",
        "vnp_PayDate": "20240521091806",
        "vnp_ResponseCode": "00",
        "vnp_TmnCode": "TEST_TMN_CODE",
        "vnp_TransactionNo": "14422574",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": "1716257871703",
    }
    expected = (
        "649982421beb422556a1374713c74e58e716ecbd05007c0c0e1f7effdfaf361d"
        "bf146889ca446139afe11b9954c4d5c486e99e3b86fcfab6957f29eb0be72895"
    )
    assert secure_hash("test_secret", params) == expected
    # Order does not matter; the hash fields, empty values and foreign parameters are left out.
    noisy = dict(reversed(list(params.items())))
    noisy.update(vnp_SecureHash="x", vnp_SecureHashType="HmacSHA512", vnp_Empty="", utm_source="mail")
    assert secure_hash("test_secret", noisy) == expected
    assert secure_hash("other_secret", params) != expected


# --- the payment URL -----------------------------------------------------------------------------------


async def test_payment_url_is_signed_and_carries_the_amount_times_100() -> None:
    result = await VNPayAdapter().start_payment(context(), start_request())

    assert result.status is ProviderStatus.requires_action
    assert result.provider_reference == "01JDXYZABCDEFGHJKMNPQRSTVW"
    assert result.next_action is not None and result.next_action["type"] == "redirect"
    url = result.next_action["url"]
    assert url.startswith(f"{BASE}/paymentv2/vpcpay.html?")
    params = url_params(url)
    assert params["vnp_Amount"] == "15000000"
    assert params == {
        "vnp_Version": "2.1.0",
        "vnp_Command": "pay",
        "vnp_TmnCode": TMN,
        "vnp_Amount": "15000000",
        "vnp_CurrCode": "VND",
        "vnp_TxnRef": "01JDXYZABCDEFGHJKMNPQRSTVW",
        "vnp_OrderInfo": "Thanh toan HD-2026/Da Nang #12",
        "vnp_OrderType": "billpayment",
        "vnp_Locale": "vn",
        "vnp_ReturnUrl": RETURN_URL,
        "vnp_IpAddr": "127.0.0.1",
        "vnp_CreateDate": "20261122170000",
        "vnp_ExpireDate": "20261122171500",
        "vnp_SecureHash": params["vnp_SecureHash"],
    }
    # The signature verifies independently: sorted, quote_plus-encoded, HMAC-SHA512.
    query = urlsplit(url).query
    signed_part, _, given = query.rpartition("&vnp_SecureHash=")
    assert signed_part == "&".join(
        f"{k}={v}" for k, v in sorted(parse_qsl(signed_part)) for v in [urlencode({"": v})[1:]]
    )
    assert given == hmac512(SECRET, signed_part)
    assert "+" in signed_part and "%2F" in signed_part and "%23" in signed_part  # spaces, '/', '#' encoded
    assert dict(result.provider_data) == {
        "txn_ref": "01JDXYZABCDEFGHJKMNPQRSTVW",
        "create_date": "20261122170000",
        "payment_url": url,
    }


async def test_bank_code_setting_preselects_the_method() -> None:
    result = await VNPayAdapter().start_payment(context(bank_code="VNBANK"), start_request())
    assert result.next_action is not None
    params = url_params(result.next_action["url"])
    assert params["vnp_BankCode"] == "VNBANK"
    assert secure_hash(SECRET, params) == params["vnp_SecureHash"]


@pytest.mark.usefixtures("new_york")
async def test_dates_are_gmt7_whatever_the_process_time_zone() -> None:
    late_evening = datetime(2026, 11, 22, 20, 30, 5, tzinfo=UTC)  # already the 23rd in Hanoi
    result = await VNPayAdapter().start_payment(
        context(), start_request(created_at=late_evening, expires_at=late_evening + timedelta(minutes=15))
    )
    assert result.next_action is not None
    params = url_params(result.next_action["url"])
    assert (params["vnp_CreateDate"], params["vnp_ExpireDate"]) == ("20261123033005", "20261123034505")
    assert result.provider_data["create_date"] == "20261123033005"

    # A naive datetime (as SQLite gives back) is UTC, never local time.
    naive = await VNPayAdapter().start_payment(context(), start_request(created_at=late_evening.replace(tzinfo=None)))
    assert naive.provider_data["create_date"] == "20261123033005"

    # The merchant API's vnp_CreateDate comes from the clock, in GMT+7 too.
    recorder = Recorder(lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="00"))
    await VNPayAdapter().refund(context(recorder), refund_request())
    assert recorder.bodies[0]["vnp_CreateDate"] == "20261123093015"


# --- IPN, return and the answers VNPAY expects ---------------------------------------------------------


def test_ipn_success_reports_the_funds_in_vnd() -> None:
    adapter = VNPayAdapter()
    request = ipn()
    assert adapter.notification_account(request) == TMN
    [event] = adapter.verify_notification(request, credentials(), NOW)
    assert event == FundsReceived(
        provider_transaction_id="14422574",
        payment_references=["01JDXYZABCDEFGHJKMNPQRSTVW"],
        amount=150000,
        currency="VND",
        account_key=TMN,
        payer={"bank_code": "NCB", "card_type": "ATM"},
        content="Thanh toan HD-2026",
    )


@pytest.mark.parametrize(
    ("code", "failure_code"),
    [("24", "payer_canceled"), ("11", "expired"), ("51", "insufficient_funds"), ("79", "vnpay_79")],
)
def test_ipn_failure_is_a_decline(code: str, failure_code: str) -> None:
    [event] = VNPayAdapter().verify_notification(
        ipn(vnp_ResponseCode=code, vnp_TransactionStatus="02"), credentials(), NOW
    )
    assert isinstance(event, PaymentDeclined)
    assert (event.failure_code, event.amount, event.payment_references) == (
        failure_code,
        150000,
        ["01JDXYZABCDEFGHJKMNPQRSTVW"],
    )
    assert event.provider_transaction_id == "14422574"
    [no_number] = VNPayAdapter().verify_notification(
        ipn(vnp_ResponseCode=code, vnp_TransactionStatus="02", vnp_TransactionNo="0"), credentials(), NOW
    )
    assert no_number.provider_transaction_id == f"01JDXYZABCDEFGHJKMNPQRSTVW:{code}"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "request_",
    [
        ipn(secret="not-the-secret"),
        ipn(vnp_TmnCode="OTHERTMN"),  # signed, but for another terminal
        InboundRequest("GET", {**ipn().query, "vnp_Amount": "1500000000"}, {}, b""),  # tampered
        InboundRequest("GET", {k: v for k, v in ipn().query.items() if k != "vnp_SecureHash"}, {}, b""),
        InboundRequest("GET", {**ipn().query, "vnp_SecureHash": "ễ" * 128}, {}, b""),  # not even ASCII
        ipn(vnp_Amount="15000050"),  # not a whole number of VND
        ipn(vnp_Amount="1.5e7"),
        ipn(vnp_Amount=""),
        ipn(vnp_TxnRef=""),
    ],
)
def test_untrustworthy_or_malformed_ipn_is_rejected(request_: InboundRequest) -> None:
    with pytest.raises(NotificationRejected):
        VNPayAdapter().verify_notification(request_, credentials(), NOW)


def test_browser_return_names_the_payment_only_when_genuine() -> None:
    adapter = VNPayAdapter()
    assert adapter.verify_return(ipn(), credentials(), NOW) == ["01JDXYZABCDEFGHJKMNPQRSTVW"]
    with pytest.raises(NotificationRejected):
        adapter.verify_return(ipn(secret="forged"), credentials(), NOW)


@pytest.mark.parametrize(
    ("outcome", "body"),
    [
        (NotificationOutcome.rejected, b'{"RspCode":"97","Message":"Invalid signature"}'),
        (NotificationOutcome.unmatched, b'{"RspCode":"01","Message":"Order not found"}'),
        (NotificationOutcome.amount_mismatch, b'{"RspCode":"04","Message":"Invalid amount"}'),
        (NotificationOutcome.duplicate, b'{"RspCode":"02","Message":"Order already confirmed"}'),
        (NotificationOutcome.applied, b'{"RspCode":"00","Message":"Confirm Success"}'),
        (NotificationOutcome.error, b'{"RspCode":"99","Message":"Unknown error"}'),
    ],
)
def test_acknowledgements_are_vnpay_json(outcome: NotificationOutcome, body: bytes) -> None:
    ack = VNPayAdapter().acknowledge(outcome)
    assert (ack.status_code, ack.body, ack.media_type) == (200, body, "application/json")


# --- the merchant API ----------------------------------------------------------------------------------


async def test_refund_checksum_joins_the_fields_in_vnpay_order() -> None:
    recorder = Recorder(
        lambda body: signed_answer(
            REFUND_RESPONSE_FIELDS,
            vnp_ResponseCode="00",
            vnp_TxnRef=body["vnp_TxnRef"],
            vnp_Amount=str(body["vnp_Amount"]),
            vnp_TransactionNo="99887766",
        )
    )
    ctx = context(recorder)
    partial = await VNPayAdapter().refund(ctx, refund_request(amount=50000))
    full = await VNPayAdapter().refund(ctx, refund_request(refund_id="re_FULL", amount=150000))

    assert (partial.status, partial.provider_reference) == (RefundOutcome.succeeded, "99887766")
    assert full.status is RefundOutcome.succeeded
    assert recorder.urls == [f"{BASE}/merchant_webapi/api/transaction"] * 2
    body = recorder.bodies[0]
    assert body["vnp_Amount"] == 5000000  # VND x 100
    assert (body["vnp_TransactionType"], recorder.bodies[1]["vnp_TransactionType"]) == ("03", "02")
    assert body["vnp_RequestId"] == "01JDXYZREFUND0000000000000" and len(body["vnp_RequestId"]) <= 32
    assert body["vnp_TransactionDate"] == "20261122170000"
    expected_data = "|".join(
        [
            body["vnp_RequestId"],
            "2.1.0",
            "refund",
            TMN,
            "03",
            "01JDXYZABCDEFGHJKMNPQRSTVW",
            "5000000",
            "14422574",
            "20261122170000",
            "gateway",
            "20261123093015",
            "127.0.0.1",
            body["vnp_OrderInfo"],
        ]
    )
    assert body["vnp_SecureHash"] == hmac512(SECRET, expected_data)
    assert body["vnp_Command"] == "refund" and body["vnp_CreateBy"] == "gateway"


async def test_querydr_checksum_joins_the_fields_in_vnpay_order() -> None:
    recorder = Recorder(
        lambda body: signed_answer(
            QUERYDR_RESPONSE_FIELDS,
            vnp_ResponseCode="00",
            vnp_TxnRef=body["vnp_TxnRef"],
            vnp_Amount="15000000",
            vnp_TransactionNo="14422574",
            vnp_TransactionStatus="00",
        )
    )
    lookup = PaymentLookup(
        payment_id="pay_01JDXYZABCDEFGHJKMNPQRSTVW",
        provider_reference="01JDXYZABCDEFGHJKMNPQRSTVW",
        provider_data={"txn_ref": "01JDXYZABCDEFGHJKMNPQRSTVW", "create_date": "20261122170000"},
        amount=150000,
        created_at=CREATED,
    )
    adapter = VNPayAdapter()
    status = await adapter.fetch_status(context(recorder), lookup)
    await adapter.fetch_status(context(recorder), lookup)

    assert (status.status, status.amount_received, status.provider_transaction_id) == (
        ProviderStatus.succeeded,
        150000,
        "14422574",  # the same id the IPN reports
    )
    body = recorder.bodies[0]
    assert recorder.bodies[0]["vnp_RequestId"] != recorder.bodies[1]["vnp_RequestId"]
    assert len(body["vnp_RequestId"]) <= 32
    expected_data = "|".join(
        [
            body["vnp_RequestId"],
            "2.1.0",
            "querydr",
            TMN,
            "01JDXYZABCDEFGHJKMNPQRSTVW",
            "20261122170000",
            "20261123093015",
            "127.0.0.1",
            body["vnp_OrderInfo"],
        ]
    )
    assert body["vnp_SecureHash"] == hmac512(SECRET, expected_data)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"vnp_ResponseCode": "91"}, (ProviderStatus.requires_action, 0, None, None)),
        (
            {"vnp_ResponseCode": "00", "vnp_TransactionStatus": "01", "vnp_Amount": "15000000"},
            (ProviderStatus.requires_action, 0, None, None),
        ),
        (
            {"vnp_ResponseCode": "00", "vnp_TransactionStatus": "02", "vnp_TransactionNo": "1"},
            (ProviderStatus.failed, 0, None, "vnpay_02"),
        ),
    ],
)
async def test_querydr_outcomes(answer: dict[str, str], expected: tuple[Any, ...]) -> None:
    lookup = PaymentLookup("pay_X1", "X1", {"txn_ref": "X1", "create_date": "20261122170000"}, 150000, CREATED)
    ctx = context(Recorder(lambda body: signed_answer(QUERYDR_RESPONSE_FIELDS, **answer)))
    result = await VNPayAdapter().fetch_status(ctx, lookup)
    assert (result.status, result.amount_received, result.provider_transaction_id, result.failure_code) == expected


@pytest.mark.parametrize(
    "respond",
    [
        lambda body: signed_answer(QUERYDR_RESPONSE_FIELDS, vnp_ResponseCode="99"),
        lambda body: signed_answer(QUERYDR_RESPONSE_FIELDS, vnp_ResponseCode="97"),
        lambda body: httpx.Response(503, text="Service Unavailable"),
        lambda body: httpx.Response(200, text="<html>maintenance</html>"),
        # Claims success but is not signed by VNPAY's key.
        lambda body: httpx.Response(
            200,
            json={
                "vnp_ResponseCode": "00",
                "vnp_TransactionStatus": "00",
                "vnp_Amount": "15000000",
                "vnp_TransactionNo": "1",
                "vnp_SecureHash": "00" * 64,
            },
        ),
    ],
)
async def test_querydr_technical_failures(respond: Callable[[dict[str, Any]], httpx.Response]) -> None:
    lookup = PaymentLookup("pay_X1", "X1", {"txn_ref": "X1", "create_date": "20261122170000"}, 150000, CREATED)
    with pytest.raises(ProviderTechnicalError):
        await VNPayAdapter().fetch_status(context(Recorder(respond)), lookup)


@pytest.mark.parametrize(
    ("code", "error_code"), [("91", "vnpay_91"), ("95", "vnpay_95"), ("97", "vnpay_97"), ("02", "vnpay_02")]
)
async def test_refund_refusals_are_declines(code: str, error_code: str) -> None:
    ctx = context(Recorder(lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode=code, vnp_Message="no")))
    with pytest.raises(ProviderDeclinedError) as raised:
        await VNPayAdapter().refund(ctx, refund_request())
    assert raised.value.code == error_code


async def test_refund_in_progress_is_pending_and_unknowns_are_technical() -> None:
    adapter = VNPayAdapter()
    pending = await adapter.refund(
        context(Recorder(lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="94"))), refund_request()
    )
    assert (pending.status, pending.provider_reference) == (RefundOutcome.pending, "01JDXYZREFUND0000000000000")

    for respond in (
        lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="99"),
        lambda body: httpx.Response(502),
    ):
        with pytest.raises(ProviderTechnicalError) as raised:
            await adapter.refund(context(Recorder(respond)), refund_request())
        assert raised.value.certainly_not_created is False

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderTechnicalError) as raised:
        await adapter.refund(context(unreachable), refund_request())
    assert raised.value.certainly_not_created is True

    def times_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderTechnicalError) as raised:
        await adapter.refund(context(times_out), refund_request())
    assert raised.value.certainly_not_created is False


async def test_refund_status_resends_the_same_request() -> None:
    recorder = Recorder(
        lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="00", vnp_TransactionNo="5")
    )
    ctx = context(recorder)
    adapter = VNPayAdapter()
    await adapter.refund(ctx, refund_request(amount=150000))
    payment_url = (await adapter.start_payment(ctx, start_request())).provider_data["payment_url"]
    lookup = RefundLookup(
        refund_id="re_01JDXYZREFUND0000000000000",
        payment_id="pay_01JDXYZABCDEFGHJKMNPQRSTVW",
        amount=150000,
        provider_reference=None,
        payment_provider_reference="01JDXYZABCDEFGHJKMNPQRSTVW",
        payment_provider_data={
            "txn_ref": "01JDXYZABCDEFGHJKMNPQRSTVW",
            "create_date": "20261122170000",
            "payment_url": payment_url,
        },
        provider_transaction_id="14422574",
        created_at=NOW,
    )
    result = await adapter.fetch_refund_status(ctx, lookup)
    assert (result.status, result.provider_reference) == (RefundOutcome.succeeded, "5")
    first, again = recorder.bodies
    assert again == first  # the very same request: VNPAY dedupes on vnp_RequestId

    refused = context(Recorder(lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="95")))
    failed = await adapter.fetch_refund_status(refused, lookup)
    assert (failed.status, failed.failure_code) == (RefundOutcome.failed, "vnpay_95")
    # A checksum error says nothing about whether the first request was refunded: not failed on a guess.
    bad_checksum = context(Recorder(lambda body: signed_answer(REFUND_RESPONSE_FIELDS, vnp_ResponseCode="97")))
    with pytest.raises(ProviderTechnicalError):
        await adapter.fetch_refund_status(bad_checksum, lookup)


def test_credentials_model_and_account_key() -> None:
    adapter = VNPayAdapter()
    assert isinstance(adapter, PaymentAdapter)
    model = adapter.credentials_model.model_validate(
        {"tmn_code": "ABCD1234", "hash_secret": "s3cret", "api_base_url": "https://sandbox.vnpayment.vn"}
    )
    assert "s3cret" not in orjson.dumps(model.model_dump(mode="json")).decode()
    assert adapter.account_key({"tmn_code": "ABCD1234"}) == "ABCD1234"
    for bad in (
        {"tmn_code": "ABC", "hash_secret": "s", "api_base_url": "https://x"},
        {"tmn_code": "ABCD1234", "hash_secret": "s", "api_base_url": "ftp://x"},
        {"tmn_code": "ABCD1234", "hash_secret": "s", "api_base_url": "https://x", "bank_code": "CASH"},
        {"tmn_code": "ABCD1234", "hash_secret": "s", "api_base_url": "https://x", "tmncode": "typo"},
    ):
        with pytest.raises(ValidationError):
            adapter.credentials_model.model_validate(bad)
