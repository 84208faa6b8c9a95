"""The telco adapter against a fake telco (tests/adapters/telco_fake.py), for each of the three profiles: what it
sends and signs (check_sums recomputed with wire.sign), and how it reads every answer and result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
import pytest

from gateway.adapters.base import (
    FundsReceived,
    InboundRequest,
    InquiryAnswer,
    InquiryStatus,
    NotificationRejected,
    NotificationUnusable,
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
from gateway.adapters.telco import wire
from gateway.adapters.telco.adapter import TelcoAdapter, TelcoCredentials
from gateway.adapters.testmode import SimulatorContext
from gateway.clock import ManualClock
from gateway.domain import NotificationOutcome
from tests.adapters.telco_fake import FakeTelco, Order

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ACCESS, KEY, MERCHANT = "ACCESSCODE123", "HASHKEY456", "MERCHANT01"
BASE = "https://telco.test"
SETTINGS = {"merchant_code": MERCHANT, "api_base_url": BASE}
SECRETS = {"access_code": ACCESS, "hash_key": KEY}
CREDENTIALS = ProviderCredentials(True, "mch_1", SETTINGS, SECRETS, BASE)
RETURN = "https://gw.test/v1/providers/x/return"


@pytest.fixture(params=wire.PROFILES, ids=[p.provider for p in wire.PROFILES])
def profile(request: pytest.FixtureRequest) -> wire.TelcoProfile:
    p: wire.TelcoProfile = request.param
    return p


@pytest.fixture
def adapter(profile: wire.TelcoProfile) -> TelcoAdapter:
    return TelcoAdapter(profile)


@pytest.fixture
async def telco(profile: wire.TelcoProfile) -> AsyncIterator[tuple[FakeTelco, ProviderContext]]:
    ctx = SimulatorContext(SETTINGS, SECRETS, "https://gw.test/notify", BASE, httpx.AsyncClient(), ManualClock(NOW))
    fake = FakeTelco(profile, ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url=BASE) as http:
        yield fake, ProviderContext(CREDENTIALS, http, "https://gw.test/notify", RETURN, ManualClock(NOW))


def start(**overrides: Any) -> StartPayment:
    values: dict[str, Any] = {
        "payment_id": "pay_01TELCO",
        "amount": 150000,
        "currency": "VND",
        "reference": "HĐ-2026/Nước 12",
        "description": None,
        "customer": {"name": "Nguyễn Văn An", "phone": "0987 654 321"},
        "return_url": None,
        "expires_at": NOW,
        "created_at": NOW,
        **overrides,
    }
    return StartPayment(**values)


def sign(profile: wire.TelcoProfile, fields: dict[str, str], names: tuple[str, ...]) -> str:
    return wire.sign(KEY, ACCESS, fields, names, profile.encoding)


def inbound(fields: dict[str, str], *, as_json: bool = False) -> InboundRequest:
    if as_json:
        return InboundRequest("POST", {}, {"content-type": "application/json"}, orjson.dumps(fields))
    return InboundRequest("POST", {}, {"content-type": "application/x-www-form-urlencoded"}, urlencode(fields).encode())


def result(profile: wire.TelcoProfile, **overrides: str) -> dict[str, str]:
    fields = {
        "billcode": "pay_01TELCO",
        "cust_msisdn": "84987654321",
        "error_code": "00",
        "merchant_code": MERCHANT,
        "order_id": "pay_01TELCO",
        "payment_status": "1",
        "trans_amount": "150000",
        "vt_transaction_id": "VT123456789",
        **overrides,
    }
    return {**fields, "check_sum": sign(profile, fields, wire.RESULT_SIGNED)}


def test_credentials_model_and_account_key(adapter: TelcoAdapter, profile: wire.TelcoProfile) -> None:
    model = TelcoCredentials.model_validate({**SETTINGS, **SECRETS})
    assert model.access_code.get_secret_value() == ACCESS
    assert adapter.name == profile.provider
    assert adapter.account_key(SETTINGS) == MERCHANT
    assert adapter.sandbox.settings == {"merchant_code": "GW" + profile.sandbox_code}
    assert adapter.sandbox.secret_names == ("access_code", "hash_key")


def test_the_encodings_differ_per_profile() -> None:
    by_provider = {p.provider: p.encoding for p in wire.PROFILES}
    assert by_provider == {"viettel_money": "base64", "vnpt_money": "hex", "mobifone_money": "base64"}


async def test_the_redirect_carries_every_field_and_a_valid_check_sum(
    adapter: TelcoAdapter, profile: wire.TelcoProfile, telco: tuple[FakeTelco, ProviderContext]
) -> None:
    fake, ctx = telco
    started = await adapter.start_payment(ctx, start())
    assert started.status is ProviderStatus.requires_action
    assert started.provider_reference == "pay_01TELCO"
    assert started.next_action is not None and started.next_action["type"] == "redirect"
    url = urlsplit(started.next_action["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == BASE + profile.payment_page_path
    fields = dict(parse_qsl(url.query, keep_blank_values=True))
    assert list(fields) == [
        "version",
        "command",
        "billcode",
        "merchant_code",
        "order_id",
        "trans_amount",
        "desc",
        "locale",
        "return_url",
        "cancel_url",
        "login_msisdn",
        "check_sum",
    ]
    assert fields["version"] == "2.0" and fields["command"] == "PAYMENT" and fields["locale"] == "vi"
    assert fields["billcode"] == fields["order_id"] == "pay_01TELCO"
    assert (fields["merchant_code"], fields["trans_amount"]) == (MERCHANT, "150000")
    assert fields["desc"] == "Thanh toan HD-2026/Nuoc 12"
    assert fields["return_url"] == fields["cancel_url"] == RETURN
    assert fields["login_msisdn"] == "84987654321"
    assert fields["check_sum"] == sign(profile, fields, wire.PAYMENT_REDIRECT_SIGNED)
    if profile.encoding == "hex":
        assert len(fields["check_sum"]) == 40 and int(fields["check_sum"], 16) >= 0
    else:
        assert fields["check_sum"].endswith("=") and len(fields["check_sum"]) == 28
    page = await ctx.http.get(started.next_action["url"])  # the fake telco's page accepts it
    assert page.status_code == 200, page.text
    assert fake.received == []  # a redirect calls nobody


async def test_a_push_prompts_the_phone_by_ussd(
    adapter: TelcoAdapter, profile: wire.TelcoProfile, telco: tuple[FakeTelco, ProviderContext]
) -> None:
    fake, ctx = telco
    started = await adapter.start_payment(ctx, start(options={"mobile_money": {"push": True}}))
    assert started.status is ProviderStatus.requires_action
    assert started.next_action is not None
    assert (started.next_action["type"], started.next_action["channel"]) == ("await_customer", "ussd")
    assert "*******4321" in started.next_action["message"]
    [sent] = fake.received
    assert sent["cmd"] == "USSD_PUSH" and sent["msisdn"] == "84987654321"
    assert sent["check_sum"] == sign(profile, sent, wire.PUSH_SIGNED)
    assert fake.orders["pay_01TELCO"].amount == 150000


async def test_a_push_refused_or_answered_badly(
    adapter: TelcoAdapter, profile: wire.TelcoProfile, telco: tuple[FakeTelco, ProviderContext]
) -> None:
    fake, ctx = telco
    push = start(options={"mobile_money": {"push": True}})
    fake.answer_codes["USSD_PUSH"] = profile.limit_code
    with pytest.raises(ProviderDeclinedError) as declined:
        await adapter.start_payment(ctx, push)
    assert declined.value.code == "limit_exceeded"
    fake.tamper_answers = True
    with pytest.raises(ProviderTechnicalError, match="check_sum"):
        await adapter.start_payment(ctx, push)
    with pytest.raises(ProviderDeclinedError) as no_phone:
        await adapter.start_payment(ctx, start(customer={"phone": "12345"}, options={"mobile_money": {"push": True}}))
    assert no_phone.value.code == "invalid_msisdn"


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_a_paid_result_is_funds(adapter: TelcoAdapter, profile: wire.TelcoProfile, as_json: bool) -> None:
    request = inbound(result(profile), as_json=as_json)
    assert adapter.notification_account(request) == MERCHANT
    [event] = adapter.verify_notification(request, CREDENTIALS, NOW)
    assert isinstance(event, FundsReceived)
    assert (event.provider_transaction_id, list(event.payment_references), event.amount) == (
        "VT123456789",
        ["pay_01TELCO"],
        150000,
    )
    assert event.payer == {"msisdn": "*******4321"}


def test_the_viettel_result_codes_map_to_failure_codes() -> None:
    adapter, profile = TelcoAdapter(wire.VIETTEL_MONEY), wire.VIETTEL_MONEY
    for code, expected in {"16": "insufficient_funds", "V06": "payer_canceled", "17": "limit_exceeded"}.items():
        [event] = adapter.verify_notification(
            inbound(result(profile, error_code=code, payment_status="0")), CREDENTIALS, NOW
        )
        assert isinstance(event, PaymentDeclined)
        assert (event.failure_code, event.amount) == (expected, 150000)
    assert profile.failure_code("XYZ") == "viettel_money_XYZ"


def test_each_profile_has_its_own_codes(profile: wire.TelcoProfile, adapter: TelcoAdapter) -> None:
    insufficient = next(c for c, v in profile.failure_codes.items() if v == "insufficient_funds")
    [event] = adapter.verify_notification(
        inbound(result(profile, error_code=insufficient, payment_status="0")), CREDENTIALS, NOW
    )
    assert isinstance(event, PaymentDeclined) and event.failure_code == "insufficient_funds"
    pending = next(iter(profile.pending_codes))
    assert (
        adapter.verify_notification(inbound(result(profile, error_code=pending, payment_status="0")), CREDENTIALS, NOW)
        == []
    )


def test_forged_and_tampered_results_are_rejected(adapter: TelcoAdapter, profile: wire.TelcoProfile) -> None:
    tampered = {**result(profile), "trans_amount": "1500000"}
    with pytest.raises(NotificationRejected):
        adapter.verify_notification(inbound(tampered), CREDENTIALS, NOW)
    other = ProviderCredentials(True, "mch_2", {"merchant_code": "OTHER"}, SECRETS, BASE)
    with pytest.raises(NotificationRejected, match="merchant_code"):
        adapter.verify_notification(inbound(result(profile)), other, NOW)
    with pytest.raises(NotificationRejected):
        adapter.verify_notification(InboundRequest("POST", {}, {}, b"{not json"), CREDENTIALS, NOW)
    with pytest.raises(NotificationUnusable):
        adapter.verify_notification(inbound(result(profile, trans_amount="1.5")), CREDENTIALS, NOW)


def test_the_result_answer_is_signed_and_echoes_the_order(adapter: TelcoAdapter, profile: wire.TelcoProfile) -> None:
    request = inbound(result(profile))
    answer = orjson.loads(adapter.acknowledge_request(NotificationOutcome.duplicate, request, CREDENTIALS).body)
    assert answer["error_code"] == "00" and answer["order_id"] == "pay_01TELCO"
    assert set(answer) == {
        "error_code",
        "merchant_code",
        "order_id",
        "return_url",
        "return_bill_code",
        "return_other_info",
        "check_sum",
    }
    assert answer["check_sum"] == sign(profile, answer, wire.RESULT_ANSWER_SIGNED)
    forged = orjson.loads(adapter.acknowledge_request(NotificationOutcome.rejected, request, None).body)
    assert (forged["error_code"], forged["check_sum"]) == ("01", "")
    error = orjson.loads(adapter.acknowledge_request(NotificationOutcome.error, request, CREDENTIALS).body)
    assert error["error_code"] == "01"


def test_a_verify_is_checked_and_answered_in_the_telco_format(
    adapter: TelcoAdapter, profile: wire.TelcoProfile
) -> None:
    fields = {"billcode": "HD0001", "merchant_code": MERCHANT, "order_id": "HD0001"}
    fields["check_sum"] = sign(profile, fields, wire.VERIFY_SIGNED)
    inquiry = adapter.verify_bill_inquiry(inbound(fields), CREDENTIALS)
    assert (inquiry.code, inquiry.order_id, inquiry.amount) == ("HD0001", "HD0001", None)
    answer = orjson.loads(
        adapter.answer_bill_inquiry(
            inbound(fields), CREDENTIALS, InquiryAnswer(InquiryStatus.payable, 150000, "NGUYEN V** AN")
        ).body
    )
    assert answer == {
        "billcode": "HD0001",
        "error_code": "00",
        "merchant_code": MERCHANT,
        "order_id": "HD0001",
        "trans_amount": "150000",
        "check_sum": sign(profile, answer, wire.VERIFY_ANSWER_SIGNED),
        "customer_name": "NGUYEN V** AN",
    }
    with pytest.raises(NotificationRejected):
        adapter.verify_bill_inquiry(inbound({**fields, "trans_amount": "1000"}), CREDENTIALS)


def test_the_published_verify_answer_vector() -> None:
    adapter = TelcoAdapter(wire.VIETTEL_MONEY)
    fields = {"billcode": "HD0001", "merchant_code": MERCHANT, "order_id": "HD0001", "trans_amount": "150000"}
    fields["check_sum"] = "Vuq/EFTdFePps5eoTvVh7kgZb80="  # PROVIDERS.md's verify request with amount
    assert adapter.verify_bill_inquiry(inbound(fields), CREDENTIALS).amount == 150000
    answer = orjson.loads(
        adapter.answer_bill_inquiry(inbound(fields), CREDENTIALS, InquiryAnswer(InquiryStatus.payable, 150000)).body
    )
    assert answer["check_sum"] == "PR9fxDOPK13I1TgoK9fvmxAcx4k="


def lookup(**overrides: Any) -> PaymentLookup:
    return PaymentLookup(
        **{
            "payment_id": "pay_01TELCO",
            "provider_reference": "pay_01TELCO",
            "provider_data": {"order_id": "pay_01TELCO"},
            "amount": 150000,
            "created_at": NOW,
            **overrides,
        }
    )


async def test_the_status_query(
    adapter: TelcoAdapter, profile: wire.TelcoProfile, telco: tuple[FakeTelco, ProviderContext]
) -> None:
    fake, ctx = telco
    unknown = await adapter.fetch_status(ctx, lookup())
    assert unknown.status is ProviderStatus.requires_action  # the payer has not opened the page yet
    fake.orders["pay_01TELCO"] = Order("pay_01TELCO", MERCHANT, "pay_01TELCO", 150000)
    assert (await adapter.fetch_status(ctx, lookup())).status is ProviderStatus.requires_action
    [sent] = [f for f in fake.received if f["cmd"] == "TRANS_INQUIRY"][:1]
    assert sent["check_sum"] == sign(profile, sent, wire.INQUIRY_SIGNED)
    fake.settle("pay_01TELCO", "success")
    paid = await adapter.fetch_status(ctx, lookup())
    assert (paid.status, paid.amount_received) == (ProviderStatus.succeeded, 150000)
    assert paid.provider_transaction_id == fake.orders["pay_01TELCO"].vt_transaction_id
    fake.orders["pay_01TELCO"] = Order("pay_01TELCO", MERCHANT, "pay_01TELCO", 150000)
    fake.settle("pay_01TELCO", "failure", profile.limit_code)
    failed = await adapter.fetch_status(ctx, lookup())
    assert (failed.status, failed.failure_code) == (ProviderStatus.failed, "limit_exceeded")
    fake.tamper_answers = True
    with pytest.raises(ProviderTechnicalError):
        await adapter.fetch_status(ctx, lookup())
    fake.tamper_answers = False
    fake.answer_codes["TRANS_INQUIRY"] = next(iter(profile.request_error_codes))
    with pytest.raises(ProviderTechnicalError):
        await adapter.fetch_status(ctx, lookup())


async def test_a_provider_answering_no_json_is_a_technical_error(adapter: TelcoAdapter) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as http:
        ctx = ProviderContext(CREDENTIALS, http, "", RETURN, ManualClock(NOW))
        with pytest.raises(ProviderTechnicalError, match="without an error_code"):
            await adapter.fetch_status(ctx, lookup())


def refund_of(amount: int, received: int = 150000) -> StartRefund:
    return StartRefund(
        refund_id="re_01TELCO",
        payment_id="pay_01TELCO",
        amount=amount,
        currency="VND",
        payment_amount_received=received,
        payment_provider_reference="pay_01TELCO",
        payment_provider_data={"order_id": "pay_01TELCO"},
        payer={},
        reason=None,
        provider_transaction_id="VT1",
    )


async def test_refunds_full_and_partial(
    adapter: TelcoAdapter, profile: wire.TelcoProfile, telco: tuple[FakeTelco, ProviderContext]
) -> None:
    fake, ctx = telco
    fake.orders["pay_01TELCO"] = Order("pay_01TELCO", MERCHANT, "pay_01TELCO", 150000)
    fake.settle("pay_01TELCO", "success")
    partial = await adapter.refund(ctx, refund_of(50000))
    assert partial.status is RefundOutcome.succeeded and partial.provider_reference
    sent = fake.received[-1]
    assert (sent["cmd"], sent["order_id"], sent["originalRequestId"]) == ("REFUND_PAYMENT", "re_01TELCO", "pay_01TELCO")
    assert (sent["refundType"], sent["trans_amount"]) == (wire.REFUND_PARTIAL, "50000")
    assert sent["check_sum"] == sign(profile, sent, wire.REFUND_SIGNED)
    await adapter.refund(ctx, refund_of(150000))
    assert fake.received[-1]["refundType"] == wire.REFUND_FULL
    fake.answer_codes["REFUND_PAYMENT"] = "99"
    with pytest.raises(ProviderDeclinedError):
        await adapter.refund(ctx, refund_of(1000))
    fake.answer_codes["REFUND_PAYMENT"] = next(iter(profile.pending_codes))
    assert (await adapter.refund(ctx, refund_of(1000))).status is RefundOutcome.pending
    looked = RefundLookup("re_01TELCO", "pay_01TELCO", 150000, None, "pay_01TELCO", {}, "VT1", NOW)
    assert (await adapter.fetch_refund_status(ctx, looked)).status is RefundOutcome.succeeded
    missing = RefundLookup("re_NONE", "pay_01TELCO", 1000, None, "pay_01TELCO", {}, "VT1", NOW)
    assert (await adapter.fetch_refund_status(ctx, missing)).status is RefundOutcome.failed
