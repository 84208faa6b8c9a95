"""§17 collection reports: the numbers (net of refunds and reversals, split by channel), the Vietnam days, the
units' roll-up and subtree, who sees what, and every bad parameter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.allocation.factories import make_bill, make_customer
from tests.allocation.test_allocation import counter_payment
from tests.collections.factories import BILLER, biller_with_partner
from tests.conftest import ADMIN, MerchantHandle, assert_problem, create_merchant, paid_payment, refund
from tests.org_units.support import province_tree, set_customer_unit, set_merchant_unit

REPORT = "/v1/reports/collections"
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


async def report(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await client.get(REPORT, params={**NOVEMBER, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def figures(payments: int, amount: int, online_payments: int, online_amount: int, target: float | None = None) -> dict:
    share = round(online_payments / payments, 4) if payments else 0.0
    return {
        "payments": payments,
        "amount": amount,
        "online_payments": online_payments,
        "online_amount": online_amount,
        "online_share": share,
        "target": target,
        "meets_target": None if target is None else share >= target,
    }


def by_key(body: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {row["key"]: {k: v for k, v in row.items() if k not in ("key", "name")} for row in body["rows"]}


async def november_payments(client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle) -> MerchantHandle:
    """The province's tree and a mix of payments in it (see the comments); the second merchant's."""
    await province_tree(client)
    await set_merchant_unit(client, merchant, "TH-TV")
    customer = await make_customer(rt, merchant)  # PA01000123456, in Cẩm Xuyên
    await set_customer_unit(client, merchant, customer, "CX")
    bill = await make_bill(rt, merchant, customer, "HD-11", 100000)
    await counter_payment(client, merchant, None, bill_id=bill)  # CX: 100,000 at the counter (the bill's customer)
    await paid_payment(client, merchant, 150000)  # TH-TV (the merchant's): online
    partly = await paid_payment(client, merchant, 200000)  # TH-TV: online, 50,000 refunded
    assert (await refund(client, merchant, partly["id"], amount=50000)).status_code == 201
    gone = await counter_payment(client, merchant, 80000)  # TH-TV: refunded in full, not counted
    assert (await refund(client, merchant, gone["id"])).status_code == 201
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)  # CX: collected then reversed
    collected = await partner.pay(BILLER, "PA01000123456", 40000, transaction_id="VCB-1", channel="app")
    assert collected.status_code == 201, collected.text
    assert (await partner.reverse("VCB-1", "debited twice")).status_code == 200
    hospital = await create_merchant(client, "Bệnh viện Đa khoa Hà Tĩnh")
    await set_merchant_unit(client, hospital, "SYT")
    await counter_payment(client, hospital, 30000)  # SYT: at the counter
    clinic = await create_merchant(client, "Phòng khám tư")
    await paid_payment(client, clinic, 70000)  # no unit: online
    return hospital


async def test_the_report_counts_net_payments_by_unit_level_subtree_and_channel(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    await november_payments(client, rt, merchant)

    body = await report(client, ADMIN, group_by="org_unit")
    assert {k: body[k] for k in ("object", "from", "to", "group_by", "org_unit", "level")} == {
        "object": "report",
        "from": "2026-11-01",
        "to": "2026-11-30",
        "group_by": "org_unit",
        "org_unit": None,
        "level": None,
    }
    assert [(row["key"], row["name"]) for row in body["rows"]] == [
        ("CX", "Cẩm Xuyên"),
        ("SYT", "Sở Y tế"),
        ("TH-TV", "Thạch Văn"),
        (None, "Chưa xác định"),
    ]
    assert by_key(body) == {
        "CX": figures(1, 100000, 0, 0, 0.6),
        "SYT": figures(1, 30000, 0, 0),
        "TH-TV": figures(2, 300000, 2, 300000),
        None: figures(1, 70000, 1, 70000),
    }
    assert body["totals"] == figures(5, 500000, 3, 370000)

    # Rolled up to the districts: the commune counts in Thạch Hà; the department has no district and stays.
    rolled = await report(client, ADMIN, group_by="org_unit", level="district")
    assert by_key(rolled) == {
        "CX": figures(1, 100000, 0, 0, 0.6),
        "SYT": figures(1, 30000, 0, 0),
        "TH": figures(2, 300000, 2, 300000, 0.4),
        None: figures(1, 70000, 1, 70000),
    }
    assert rolled["level"] == "district" and by_key(rolled)["TH"]["meets_target"] is True
    assert by_key(rolled)["CX"]["meets_target"] is False

    # The province's subtree (no unit-less payment), by channel, against the province's target.
    province = await report(client, ADMIN, group_by="channel", org_unit="HT")
    assert [(row["key"], row["name"]) for row in province["rows"]] == [
        ("counter", "Tại quầy"),
        ("online", "Trực tuyến"),
    ]
    assert by_key(province) == {"counter": figures(2, 130000, 0, 0, 0.5), "online": figures(2, 300000, 2, 300000, 0.5)}
    assert province["totals"] == figures(4, 430000, 2, 300000, 0.5)
    assert province["totals"]["meets_target"] is True
    district = await report(client, ADMIN, group_by="org_unit", org_unit="TH")
    assert by_key(district) == {"TH-TV": figures(2, 300000, 2, 300000)}
    assert district["totals"] == figures(2, 300000, 2, 300000, 0.4)

    methods = await report(client, ADMIN, group_by="method")
    assert [(row["key"], row["name"], row["payments"]) for row in methods["rows"]] == [
        ("counter", "Tại quầy", 2),
        ("vietqr", "Chuyển khoản (VietQR)", 3),
    ]
    providers = await report(client, ADMIN, group_by="provider")
    assert [(row["key"], row["name"], row["payments"]) for row in providers["rows"]] == [
        ("counter", "counter", 2),
        ("vietqr", "vietqr", 3),
    ]
    days = await report(client, ADMIN, group_by="day")
    assert [(row["key"], row["name"], row["payments"]) for row in days["rows"]] == [("2026-11-22", "2026-11-22", 5)]
    assert (await report(client, ADMIN, group_by="day", livemode="true"))["rows"] == []
    assert (await report(client, ADMIN, group_by="day", livemode="false"))["totals"] == figures(5, 500000, 3, 370000)


async def test_a_merchant_sees_its_own_payments_and_units_within_its_own(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    hospital = await november_payments(client, rt, merchant)

    own = await report(client, merchant.headers, group_by="merchant")
    assert [(row["key"], row["name"]) for row in own["rows"]] == [(merchant.id, "Bach Mai Hospital")]
    assert own["totals"] == figures(3, 400000, 2, 300000)
    everyone = await report(client, ADMIN, group_by="merchant")
    assert {row["name"] for row in everyone["rows"]} == {
        "Bach Mai Hospital",
        "Bệnh viện Đa khoa Hà Tĩnh",
        "Phòng khám tư",
    }

    # The merchant is in Thạch Văn: units in its subtree only.
    assert by_key(await report(client, merchant.headers, group_by="org_unit", org_unit="TH-TV")) == {
        "TH-TV": figures(2, 300000, 2, 300000)
    }
    for outside in ("HT", "CX", "SYT"):
        response = await client.get(
            REPORT, params={**NOVEMBER, "group_by": "org_unit", "org_unit": outside}, headers=merchant.headers
        )
        assert_problem(response, 403, "forbidden")
    # The hospital is in the province's department: not the whole province.
    assert_problem(
        await client.get(REPORT, params={**NOVEMBER, "group_by": "day", "org_unit": "HT"}, headers=hospital.headers),
        403,
        "forbidden",
    )
    assert (await report(client, hospital.headers, group_by="day", org_unit="SYT"))["totals"] == figures(1, 30000, 0, 0)
    # A merchant without a unit may filter by any unit; it still sees only its own payments.
    await set_merchant_unit(client, hospital, None)
    assert (await report(client, hospital.headers, group_by="day", org_unit="HT"))["totals"] == figures(
        1, 30000, 0, 0, 0.5
    )
    assert (await report(client, hospital.headers, group_by="day", org_unit="TH"))["rows"] == []


async def test_vietnam_calendar_days_decide_the_range(
    client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock
) -> None:
    clock.advance(8 * 86400 + 6.5 * 3600)  # 2026-11-30T16:30Z: 23:30 on 30 November in Vietnam
    await paid_payment(client, merchant, 10000)
    clock.advance(3600)  # 00:30 on 1 December in Vietnam
    await paid_payment(client, merchant, 20000)
    november = await report(client, ADMIN, group_by="day")
    assert by_key(november) == {"2026-11-30": figures(1, 10000, 1, 10000)}
    both = await report(client, ADMIN, group_by="day", to="2026-12-01")
    assert [(row["key"], row["amount"]) for row in both["rows"]] == [("2026-11-30", 10000), ("2026-12-01", 20000)]
    december = await report(client, ADMIN, group_by="channel", **{"from": "2026-12-01", "to": "2026-12-01"})
    assert by_key(december) == {"online": figures(1, 20000, 1, 20000)}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "2026-12-01", "to": "2026-11-30", "group_by": "day"}, "to"),
        ({"from": "2026-01-01", "to": "2027-01-02", "group_by": "day"}, "to"),
        ({"from": "2026-11-31", "to": "2026-11-30", "group_by": "day"}, "from"),
        ({"from": "2026-11-01", "to": "30/11/2026", "group_by": "day"}, "to"),
        ({"to": "2026-11-30", "group_by": "day"}, "from"),
        ({**NOVEMBER, "group_by": "district"}, "group_by"),
        ({**NOVEMBER}, "group_by"),
        ({**NOVEMBER, "group_by": "org_unit", "org_unit": "NOWHERE"}, "org_unit"),
        ({**NOVEMBER, "group_by": "org_unit", "level": "village"}, "level"),
        ({**NOVEMBER, "group_by": "day", "level": "district"}, "level"),
        ({**NOVEMBER, "group_by": "day", "livemode": "maybe"}, "livemode"),
    ],
)
@pytest.mark.parametrize("path", [REPORT, REPORT + ".svg"])
async def test_bad_parameters_answer_422_naming_them(
    client: httpx.AsyncClient, params: dict[str, str], name: str, path: str
) -> None:
    assert_problem(await client.get(path, params=params, headers=ADMIN), 422, "validation_error", ["query", name])
