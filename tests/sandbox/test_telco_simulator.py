"""The sandbox telco, from the gateway's side of the wire: its payment page, its API, its USSD menu and its faults,
against a fake gateway that checks every check_sum with the wire module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.adapters.telco import sandbox_telco, ussd, wire
from gateway.adapters.telco.sandbox_telco import OrderStatus, telco_code
from gateway.adapters.telco.simulator import pay_telco
from gateway.adapters.telco.wire import PROFILES, VIETTEL_MONEY, TelcoProfile
from gateway.adapters.testmode import SandboxPayerFailed
from tests.sandbox.telco_fake_gateway import SANDBOX_MERCHANT, SIMULATOR, Harness, make_harness

PHONE, MSISDN = "0987654321", "84987654321"
BILLERS = [{"biller_code": f"BILLER{i:02d}", "name": f"Cong ty Nuoc sach so {i:02d}"} for i in range(1, 12)]
PROFILE_IDS = [p.provider for p in PROFILES]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_telco, "RESULT_RETRY_BACKOFF_SECONDS", (0.01, 0.01, 0.01))


@pytest.fixture(params=PROFILES, ids=PROFILE_IDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = make_harness(request.param)
    h.gateway.billers = list(BILLERS)
    h.gateway.bills[("BILLER10", "PA01")] = (150_000, "NGUYEN VAN AN")
    h.gateway.bills[(SANDBOX_MERCHANT, "pay_1")] = (150_000, "")
    async with h.client:
        yield h
        await h.telco.settle_retries()


@pytest.fixture
async def viettel() -> AsyncIterator[Harness]:
    h = make_harness(VIETTEL_MONEY)
    h.gateway.billers = list(BILLERS)
    h.gateway.bills[("BILLER10", "PA01")] = (150_000, "NGUYEN VAN AN")
    h.gateway.bills[(SANDBOX_MERCHANT, "pay_1")] = (150_000, "")
    async with h.client:
        yield h
        await h.telco.settle_retries()


def redirect_query(h: Harness, order_id: str = "pay_1", amount: int = 150_000) -> dict[str, str]:
    fields = {
        "version": wire.VERSION,
        "command": wire.PAYMENT_COMMAND,
        "billcode": order_id,
        "merchant_code": SANDBOX_MERCHANT,
        "order_id": order_id,
        "trans_amount": str(amount),
        "desc": "Tien nuoc thang 11",
        "locale": "vi",
        "return_url": "https://his.example.vn/paid?ref=1",
        "cancel_url": "https://his.example.vn/canceled",
        "login_msisdn": PHONE,
    }
    return h.sign(fields, wire.PAYMENT_REDIRECT_SIGNED)


def assert_signed_result(h: Harness, result: dict[str, str]) -> None:
    assert set(result) == {*wire.RESULT_SIGNED, "check_sum"}
    assert h.gateway.authentic(result, wire.RESULT_SIGNED)


# --- the payment page ----------------------------------------------------------------------------------


async def test_the_payment_page_refuses_a_bad_check_sum(harness: Harness) -> None:
    query = {**redirect_query(harness), "trans_amount": "1000"}
    response = await harness.client.get(harness.profile.payment_page_path, params=query)
    assert response.status_code == 400
    assert "check_sum" in response.text
    assert harness.telco.orders == {}


async def test_the_payment_page_shows_the_amount_and_a_phone_and_pin_form(harness: Harness) -> None:
    response = await harness.client.get(harness.profile.payment_page_path, params=redirect_query(harness))
    assert response.status_code == 200
    page = response.text
    assert "150.000 VND" in page and 'lang="vi"' in page and "(Pay)" in page and "(Cancel)" in page
    assert '<label for="pin">' in page and 'value="0987654321"' in page
    assert "http" not in page.replace(harness.telco.public_base_url, "")  # no external assets
    assert harness.telco.orders["pay_1"].status is OrderStatus.pending


async def test_paying_on_the_page_verifies_debits_and_posts_a_signed_result(harness: Harness) -> None:
    await harness.client.get(harness.profile.payment_page_path, params=redirect_query(harness))
    response = await harness.client.post(
        "/_sandbox/checkout", data={"order_id": "pay_1", "phone": PHONE, "pin": "1234", "action": "pay"}
    )
    assert response.status_code == 303
    back = urlsplit(response.headers["location"])
    assert back.netloc == "his.example.vn" and back.path == "/paid"
    returned = dict(parse_qsl(back.query))
    assert returned["ref"] == "1" and returned["payment_status"] == wire.PAID

    (verify,) = harness.gateway.verifies
    assert verify["trans_amount"] == "150000" and verify["merchant_code"] == SANDBOX_MERCHANT
    assert harness.gateway.authentic(verify, wire.VERIFY_SIGNED)
    (result,) = harness.gateway.results
    assert_signed_result(harness, result)
    assert result["payment_status"] == wire.PAID and result["error_code"] == wire.SUCCESS
    assert result["cust_msisdn"] == MSISDN and result["trans_amount"] == "150000"
    assert result["order_id"] == result["billcode"] == "pay_1"
    assert result["vt_transaction_id"].startswith(harness.profile.transaction_prefix)
    assert result["vt_transaction_id"][len(harness.profile.transaction_prefix) :].isdigit()
    assert harness.gateway.content_types[-1] == "application/x-www-form-urlencoded"
    assert harness.telco.wallet(MSISDN).balance == 5_000_000 - 150_000


async def test_canceling_on_the_page_posts_an_unpaid_result_and_goes_to_cancel_url(harness: Harness) -> None:
    await harness.client.get(harness.profile.payment_page_path, params=redirect_query(harness))
    response = await harness.client.post("/_sandbox/checkout", data={"order_id": "pay_1", "action": "cancel"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("https://his.example.vn/canceled?")
    (result,) = harness.gateway.results
    assert_signed_result(harness, result)
    assert result["payment_status"] == wire.NOT_PAID
    assert harness.profile.failure_code(result["error_code"]) == "payer_canceled"
    assert harness.gateway.verifies == []
    assert harness.telco.wallet(MSISDN).balance == 5_000_000


async def test_a_wrong_pin_on_the_page_is_asked_again_and_charges_nothing(viettel: Harness) -> None:
    await viettel.client.get(viettel.profile.payment_page_path, params=redirect_query(viettel))
    response = await viettel.client.post(
        "/_sandbox/checkout", data={"order_id": "pay_1", "phone": PHONE, "pin": "0000", "action": "pay"}
    )
    assert response.status_code == 400 and "Wrong PIN" in response.text
    assert viettel.gateway.results == [] and viettel.telco.orders["pay_1"].status is OrderStatus.pending


async def test_results_can_be_posted_as_json(viettel: Harness) -> None:
    viettel.telco.callback_format = "json"
    await viettel.client.get(viettel.profile.payment_page_path, params=redirect_query(viettel))
    await viettel.client.post(
        "/_sandbox/checkout", data={"order_id": "pay_1", "phone": PHONE, "pin": "1234", "action": "pay"}
    )
    assert viettel.gateway.content_types == ["application/json", "application/json"]
    assert_signed_result(viettel, viettel.gateway.results[0])


# --- the API -------------------------------------------------------------------------------------------


def inquiry(h: Harness, order_id: str) -> dict[str, str]:
    fields = {"cmd": wire.INQUIRY_COMMAND, "merchant_code": SANDBOX_MERCHANT, "order_id": order_id, "version": "2.0"}
    return h.sign(fields, wire.INQUIRY_SIGNED)


async def test_trans_inquiry_answers_unknown_pending_and_paid_signed(harness: Harness) -> None:
    profile = harness.profile
    unknown = await harness.api(inquiry(harness, "pay_1"))
    assert unknown["error_code"] in profile.unknown_order_codes
    assert harness.gateway.authentic(unknown, wire.INQUIRY_ANSWER_SIGNED)

    await harness.client.get(profile.payment_page_path, params=redirect_query(harness))
    pending = await harness.api(inquiry(harness, "pay_1"))
    assert pending["error_code"] in profile.pending_codes and pending["payment_status"] == wire.NOT_PAID

    await pay_telco(harness.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)
    paid = await harness.api(inquiry(harness, "pay_1"))
    assert set(paid) == {*wire.INQUIRY_ANSWER_SIGNED, "check_sum"}
    assert harness.gateway.authentic(paid, wire.INQUIRY_ANSWER_SIGNED)
    assert paid["error_code"] == wire.SUCCESS and paid["payment_status"] == wire.PAID
    assert paid["trans_amount"] == "150000"
    assert paid["vt_transaction_id"] == harness.gateway.results[0]["vt_transaction_id"]


async def test_a_request_with_a_bad_check_sum_changes_nothing(harness: Harness) -> None:
    await pay_telco(harness.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)
    forged_inquiry = {**inquiry(harness, "pay_1"), "check_sum": "AAAA"}
    answer = await harness.api(forged_inquiry)
    assert harness.profile.failure_code(answer["error_code"]) == "invalid_signature"
    forged_refund = {**refund_request(harness, "rf_1", "0", 150_000), "trans_amount": "150"}
    answer = await harness.api(forged_refund)
    assert harness.profile.failure_code(answer["error_code"]) == "invalid_signature"
    assert harness.telco.orders["pay_1"].refunded == 0


def refund_request(h: Harness, refund_id: str, refund_type: str, amount: int) -> dict[str, str]:
    fields = {
        "cmd": wire.REFUND_COMMAND,
        "merchant_code": SANDBOX_MERCHANT,
        "order_id": refund_id,
        "originalRequestId": "pay_1",
        "refundType": refund_type,
        "trans_amount": str(amount),
        "trans_content": "Hoan tien",
        "version": wire.VERSION,
    }
    return h.sign(fields, wire.REFUND_SIGNED)


async def test_refunds_credit_the_wallet_once_and_refuse_too_much(harness: Harness) -> None:
    await pay_telco(harness.client, SIMULATOR, {"order_id": "pay_1", "msisdn": PHONE}, "success", 150_000)
    wallet = harness.telco.wallet(MSISDN)
    assert wallet.balance == 4_850_000
    declined = telco_code(harness.profile, "declined")

    assert (await harness.api(refund_request(harness, "rf_0", "0", 100_000)))["error_code"] == declined
    first = await harness.api(refund_request(harness, "rf_1", "1", 100_000))
    assert set(first) == {*wire.REFUND_ANSWER_SIGNED, "check_sum"}
    assert harness.gateway.authentic(first, wire.REFUND_ANSWER_SIGNED)
    assert first["error_code"] == wire.SUCCESS and first["order_id"] == "rf_1"
    assert first["refund_transaction_id"].startswith(harness.profile.transaction_prefix)
    assert await harness.api(refund_request(harness, "rf_1", "1", 100_000)) == first
    assert wallet.balance == 4_950_000

    assert (await harness.api(refund_request(harness, "rf_2", "1", 60_000)))["error_code"] == declined
    second = await harness.api(refund_request(harness, "rf_3", "1", 50_000))
    assert second["error_code"] == wire.SUCCESS and second["refund_transaction_id"] != first["refund_transaction_id"]
    assert wallet.balance == 5_000_000 and harness.telco.orders["pay_1"].refunded == 150_000


async def test_a_full_refund_returns_everything(viettel: Harness) -> None:
    await pay_telco(viettel.client, SIMULATOR, {"order_id": "pay_1", "msisdn": PHONE}, "success", 150_000)
    answer = await viettel.api(refund_request(viettel, "rf_1", "0", 150_000))
    assert answer["error_code"] == wire.SUCCESS
    assert viettel.telco.wallet(MSISDN).balance == 5_000_000
    unknown = {**refund_request(viettel, "rf_2", "0", 150_000), "originalRequestId": "nope"}
    answer = await viettel.api(viettel.sign(unknown, wire.REFUND_SIGNED))
    assert answer["error_code"] in viettel.profile.unknown_order_codes


def push_request(h: Harness, order_id: str = "pay_1", amount: int = 150_000) -> dict[str, str]:
    fields = {
        "billcode": order_id,
        "cmd": wire.PUSH_COMMAND,
        "merchant_code": SANDBOX_MERCHANT,
        "msisdn": MSISDN,
        "order_id": order_id,
        "trans_amount": str(amount),
        "version": wire.VERSION,
    }
    return h.sign(fields, wire.PUSH_SIGNED)


async def test_a_ussd_push_prompts_the_phone_for_its_pin(harness: Harness) -> None:
    answer = await harness.api(push_request(harness))
    assert answer == harness.sign(
        {"error_code": "00", "merchant_code": SANDBOX_MERCHANT, "order_id": "pay_1"}, wire.PUSH_ANSWER_SIGNED
    )
    first, done = await harness.dial("s1", "1234")
    assert first.startswith("CON ") and "150.000 VND" in first and "PIN" in first
    assert done.startswith("END ") and "thanh cong" in done
    (verify,) = harness.gateway.verifies
    assert verify["trans_amount"] == "150000" and verify["order_id"] == "pay_1"
    (result,) = harness.gateway.results
    assert_signed_result(harness, result)
    assert result["payment_status"] == wire.PAID and result["cust_msisdn"] == MSISDN
    assert result["vt_transaction_id"] in done
    # Answered once: the next session is the menu again.
    assert "Thanh toan hoa don" in (await harness.dial("s2"))[0]


async def test_a_pushed_payment_can_be_refused_from_the_phone(viettel: Harness) -> None:
    await viettel.api(push_request(viettel))
    _, refused = await viettel.dial("s1", "0")
    assert refused.startswith("END ")
    (result,) = viettel.gateway.results
    assert result["payment_status"] == wire.NOT_PAID and result["error_code"] == "V06"


async def test_a_push_with_a_bad_check_sum_queues_nothing(viettel: Harness) -> None:
    answer = await viettel.api({**push_request(viettel), "trans_amount": "1"})
    assert answer["error_code"] == "V01"
    assert viettel.telco.pushes == {} and "Thanh toan hoa don" in (await viettel.dial("s1"))[0]


# --- the USSD menu -------------------------------------------------------------------------------------


async def test_the_whole_ussd_journey_pays_a_bill(harness: Harness) -> None:
    main, page1, page2, code, confirm, pin, done = await harness.dial("s1", "1", "9", "2", "PA01", "1", "1234")
    assert main.startswith("CON ") and "1 Thanh toan hoa don" in main
    # Eight billers and `9` for more; names too long to fit keep their beginning and their distinct end.
    assert "1 Cong t.. so 01" in page1 and "8 Cong t.. so 08" in page1 and "9 Xem them" in page1
    assert "so 09" not in page1
    assert "1 Cong ty Nuoc sach so 09" in page2 and "3 Cong ty Nuoc sach so 11" in page2 and "Xem them" not in page2
    assert "so 10" in code and "Nhap ma" in code
    assert "NGUYEN V** AN" in confirm and "150.000 VND" in confirm and "1 Xac nhan" in confirm
    assert pin.startswith("CON ") and "PIN" in pin
    assert done.startswith("END ") and "thanh cong" in done

    (verify,) = harness.gateway.verifies
    assert "trans_amount" not in verify
    assert verify["merchant_code"] == "BILLER10" and verify["billcode"] == "PA01"
    assert harness.gateway.authentic(verify, wire.VERIFY_SIGNED)
    (result,) = harness.gateway.results
    assert_signed_result(harness, result)
    assert result["merchant_code"] == "BILLER10" and result["billcode"] == "PA01"
    assert result["order_id"] == verify["order_id"] != "PA01"
    assert result["payment_status"] == wire.PAID and result["trans_amount"] == "150000"
    assert result["vt_transaction_id"] in done
    assert harness.telco.wallet(MSISDN).balance == 4_850_000
    assert "s1" not in harness.simulator.ussd.sessions


async def test_the_biller_menu_goes_back(viettel: Harness) -> None:
    _, page1, page2, back1, main = await viettel.dial("s1", "1", "9", "0", "0")
    assert "9 Xem them" in page1 and "0 Tro ve" in page2
    assert back1 == page1 and "Thanh toan hoa don" in main


async def test_the_balance_screen(viettel: Harness) -> None:
    _, balance = await viettel.dial("s1", "2")
    assert balance.startswith("END ") and "5.000.000 VND" in balance


async def test_an_unknown_code_ends_politely_with_nothing_posted(viettel: Harness) -> None:
    *_, unknown = await viettel.dial("s1", "1", "9", "2", "NOPE")
    assert unknown.startswith("END ") and "NOPE" in unknown
    assert viettel.gateway.results == [] and viettel.telco.orders == {}


async def test_three_wrong_pins_end_the_session(harness: Harness) -> None:
    screens = await harness.dial("s1", "1", "9", "2", "PA01", "1", "1111", "2222", "3333")
    first_wrong, second_wrong, ended = screens[-3:]
    assert first_wrong.startswith("CON ") and "con 2 lan" in first_wrong
    assert second_wrong.startswith("CON ") and "con 1 lan" in second_wrong
    assert ended.startswith("END ") and "3 lan" in ended
    (result,) = harness.gateway.results
    assert result["payment_status"] == wire.NOT_PAID
    assert harness.profile.failure_code(result["error_code"]) == "wrong_pin"
    assert harness.telco.wallet(MSISDN).balance == 5_000_000
    # The session is over: a fourth PIN finds none.
    again = await harness.ussd("s1", "1*9*2*PA01*1*1111*2222*3333*1234")
    assert again.startswith("END ") and harness.telco.wallet(MSISDN).balance == 5_000_000


async def test_insufficient_balance_ends_and_fails_the_payment(harness: Harness) -> None:
    harness.gateway.bills[("BILLER10", "PA02")] = (6_000_000, "TRAN THI BINH")
    *_, ended = await harness.dial("s1", "1", "9", "2", "PA02", "1", "1234")
    assert ended.startswith("END ") and "khong du" in ended and "6.000.000 VND" in ended
    (result,) = harness.gateway.results
    assert_signed_result(harness, result)
    assert result["payment_status"] == wire.NOT_PAID
    assert harness.profile.failure_code(result["error_code"]) == "insufficient_funds"
    assert harness.telco.wallet(MSISDN).balance == 5_000_000


async def test_the_monthly_limit_counts_the_vietnamese_calendar_month(harness: Harness) -> None:
    # 23:00 on 30 November in Vietnam (16:00 UTC); two hours later it is December there.
    harness.clock.advance((datetime(2026, 11, 30, 16, 0, tzinfo=UTC) - harness.clock.now()).total_seconds())
    harness.telco.wallet(MSISDN).balance = 30_000_000
    harness.gateway.bills[("BILLER10", "BIG")] = (6_000_000, "LE VAN C")
    journey = ("1", "9", "2", "BIG", "1", "1234")
    assert "thanh cong" in (await harness.dial("s1", *journey))[-1]
    over = (await harness.dial("s2", *journey))[-1]
    assert over.startswith("END ") and "han muc" in over
    refused = harness.gateway.results[-1]
    assert refused["error_code"] == harness.profile.limit_code and refused["payment_status"] == wire.NOT_PAID
    assert harness.telco.wallet(MSISDN).balance == 24_000_000
    harness.clock.advance(2 * 3600)
    assert "thanh cong" in (await harness.dial("s3", *journey))[-1]
    assert harness.telco.wallet(MSISDN).balance == 18_000_000


async def test_bad_inputs_repeat_the_screen_politely(viettel: Harness) -> None:
    main = await viettel.ussd("s1", "")
    not_a_choice = await viettel.ussd("s1", "7")
    assert not_a_choice.startswith("CON ") and "Lua chon sai" in not_a_choice and "1 Thanh toan" in not_a_choice
    letters = await viettel.ussd("s1", "7*abc")
    assert letters.startswith("CON ") and "1 Thanh toan" in letters
    empty = await viettel.ussd("s1", "7*abc*")
    assert empty.startswith("CON ") and "chua nhap" in empty
    long_line = await viettel.ussd("s1", "7*abc**" + "8" * 200)
    assert long_line.startswith("CON ") and "Toi da 40 ky tu" in long_line and "1 Thanh toan" in long_line
    repeated = await viettel.ussd("s1", "7*abc**" + "8" * 200)
    assert repeated.startswith("CON ") and main[4:] in repeated
    billers = await viettel.ussd("s1", "7*abc**" + "8" * 200 + "*1")
    assert "Chon don vi" in billers
    for bad in ("99", "x", "9*9"):
        await viettel.ussd("s2", "")
        await viettel.ussd("s2", "1")
        after = await viettel.ussd("s2", f"1*{bad}")
        assert after.startswith("CON ") and len(after) <= 182
        viettel.simulator.ussd.sessions.clear()
    code_screen = (await viettel.dial("s3", "1", "1"))[-1]
    assert "Nhap ma" in code_screen
    odd = await viettel.ussd("s3", "1*1*PA 01!")
    assert odd.startswith("CON ") and "Ma khong hop le" in odd


async def test_the_wrong_service_code_phone_or_body_ends_at_once(viettel: Harness) -> None:
    wrong_code = await viettel.client.post(
        "/ussd", json={"session_id": "a", "service_code": "*123#", "phone": PHONE, "text": ""}
    )
    assert wrong_code.text.startswith("END ")
    wrong_phone = await viettel.client.post(
        "/ussd", json={"session_id": "a", "service_code": "*998#", "phone": "12345", "text": ""}
    )
    assert wrong_phone.text.startswith("END ")
    garbage = await viettel.client.post("/ussd", content=b"{nope", headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and garbage.text.startswith("END ")
    too_long = await viettel.client.post(
        "/ussd", json={"session_id": "a", "service_code": "*998#", "phone": PHONE, "text": "1" * 5000}
    )
    assert too_long.status_code == 400 and len(too_long.text) <= 182


async def test_long_biller_names_still_fit_a_screen(viettel: Harness) -> None:
    viettel.gateway.billers = [
        {"biller_code": f"B{i}", "name": f"Tong cong ty Dien luc Thanh pho Ho Chi Minh chi nhanh so {i}"}
        for i in range(20)
    ]
    screens = await viettel.dial("s1", "1", "9", "9", "x", "3")
    assert all(len(s) <= 182 for s in screens)
    assert "9 Xem them" in screens[1] and "Nhap ma" in screens[-1]


async def test_sessions_expire_when_idle_and_are_capped(viettel: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await viettel.ussd("idle", "")
    viettel.clock.advance(ussd.SESSION_IDLE_SECONDS + 1)
    assert (await viettel.ussd("idle", "1")).startswith("END ")
    monkeypatch.setattr(ussd, "MAX_SESSIONS", 3)
    for i in range(5):
        await viettel.ussd(f"s{i}", "")
    assert list(viettel.simulator.ussd.sessions) == ["s2", "s3", "s4"]


async def test_a_session_belongs_to_its_phone(viettel: Harness) -> None:
    await viettel.ussd("s1", "")
    assert (await viettel.ussd("s1", "1", phone="0912345678")).startswith("END ")


# --- results and faults --------------------------------------------------------------------------------


async def test_a_result_not_stored_is_sent_again_later(viettel: Harness) -> None:
    viettel.gateway.refuse_results = 2
    await viettel.dial("s1", "1", "9", "2", "PA01", "1", "1234")
    assert viettel.gateway.results == []
    await viettel.telco.settle_retries()
    (result,) = viettel.gateway.results
    assert result["payment_status"] == wire.PAID


async def test_fault_result_twice(harness: Harness) -> None:
    response = await harness.client.post("/_sandbox/faults", json={"fault": "result_twice"})
    assert response.status_code == 200
    await harness.dial("s1", "1", "9", "2", "PA01", "1", "1234")
    first, second = harness.gateway.results
    assert first == second
    assert harness.telco.wallet(MSISDN).balance == 4_850_000


async def test_fault_result_lost_leaves_the_inquiry_to_tell(harness: Harness) -> None:
    harness.telco.faults["result_lost"] = 1
    await pay_telco(harness.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)
    await harness.telco.settle_retries()
    assert harness.gateway.results == []
    answer = await harness.api(inquiry(harness, "pay_1"))
    assert answer["error_code"] == wire.SUCCESS and answer["payment_status"] == wire.PAID


async def test_fault_verify_timeout_ends_with_an_error(viettel: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_telco, "VERIFY_TIMEOUT_SECONDS", 0.05)
    await viettel.client.post("/_sandbox/faults", json={"fault": "verify_timeout"})
    *_, ended = await viettel.dial("s1", "1", "9", "2", "PA01")
    assert ended.startswith("END ") and "thu lai sau" in ended
    assert len(viettel.gateway.verifies) == 1 and viettel.gateway.results == []
    assert viettel.telco.wallet(MSISDN).balance == 5_000_000
    # The fault was used up: the next session pays.
    assert "thanh cong" in (await viettel.dial("s2", "1", "9", "2", "PA01", "1", "1234"))[-1]


async def test_an_unknown_fault_is_refused(viettel: Harness) -> None:
    response = await viettel.client.post("/_sandbox/faults", json={"fault": "meteor"})
    assert response.status_code == 422


# --- the test helpers' payer ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
async def test_pay_telco_pays_and_fails_gateway_started_orders(profile: TelcoProfile) -> None:
    h = make_harness(profile)
    h.gateway.bills[(SANDBOX_MERCHANT, "pay_1")] = (150_000, "")
    async with h.client:
        await pay_telco(
            h.client, SIMULATOR, {"order_id": "pay_1", "merchant_code": SANDBOX_MERCHANT}, "success", 150_000
        )
        await pay_telco(h.client, SIMULATOR, {"order_id": "pay_2"}, "failure", 80_000)
    paid, failed = h.gateway.results
    assert_signed_result(h, paid)
    assert paid["payment_status"] == wire.PAID and paid["order_id"] == paid["billcode"] == "pay_1"
    assert h.gateway.verifies[0]["trans_amount"] == "150000"
    assert_signed_result(h, failed)
    assert failed["payment_status"] == wire.NOT_PAID and failed["trans_amount"] == "80000"
    assert profile.failure_code(failed["error_code"]) == "insufficient_funds"


async def test_pay_telco_reports_what_it_could_not_do(viettel: Harness) -> None:
    with pytest.raises(SandboxPayerFailed):
        await pay_telco(viettel.client, SIMULATOR, {}, "success", 1000)
    with pytest.raises(SandboxPayerFailed):  # the gateway does not know the order: verify answers 01
        await pay_telco(viettel.client, SIMULATOR, {"order_id": "pay_404"}, "success", 1000)
    await pay_telco(viettel.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)
    with pytest.raises(SandboxPayerFailed):  # already paid
        await pay_telco(viettel.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)


async def test_three_wrong_pins_on_the_page_fail_the_payment(viettel: Harness) -> None:
    await viettel.client.get(viettel.profile.payment_page_path, params=redirect_query(viettel))
    form = {"order_id": "pay_1", "phone": PHONE, "pin": "0000", "action": "pay"}
    assert (await viettel.client.post("/_sandbox/checkout", data=form)).status_code == 400
    assert (await viettel.client.post("/_sandbox/checkout", data=form)).status_code == 400
    third = await viettel.client.post("/_sandbox/checkout", data=form)
    assert third.status_code == 303 and third.headers["location"].startswith("https://his.example.vn/paid?")
    (result,) = viettel.gateway.results
    assert result["payment_status"] == wire.NOT_PAID and result["error_code"] == "21"
    again = await viettel.client.post("/_sandbox/checkout", data={**form, "pin": "1234"})
    assert again.status_code == 409 and viettel.telco.wallet(MSISDN).balance == 5_000_000


async def test_the_control_routes_read_and_set_wallets_and_orders(viettel: Harness) -> None:
    assert (await viettel.client.post(f"/_sandbox/wallets/{PHONE}", json={"balance": 42})).status_code == 200
    wallet = (await viettel.client.get("/_sandbox/wallets/+84987654321")).json()
    assert wallet == {"msisdn": MSISDN, "balance": 42, "spent_this_month": 0}
    assert (await viettel.client.get("/_sandbox/wallets/123")).status_code == 422
    assert (await viettel.client.get("/_sandbox/orders/pay_1")).status_code == 404
    await pay_telco(viettel.client, SIMULATOR, {"order_id": "pay_1"}, "success", 150_000)
    order = (await viettel.client.get("/_sandbox/orders/pay_1")).json()
    assert order["status"] == "paid" and order["payment_status"] == wire.PAID
