"""A whole VietQR payment through the public API: create, QR, payer's transfer, success, refund, ledger."""

from __future__ import annotations

import io

import httpx
import zxingcpp
from asgi_lifespan import LifespanManager
from PIL import Image

from gateway.adapters.emvco import parse_vietqr
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.settings import Settings
from tests.conftest import BASE_URL, MerchantHandle, create_vietqr_payment, pay


async def test_create_and_confirm_shows_a_scannable_qr(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    assert payment["status"] == "requires_action"
    assert payment["id"].startswith("pay_")
    action = payment["next_action"]
    assert action["type"] == "display_qr"
    assert action["qr_image_url"] == f"/v1/payments/{payment['id']}/qr.png"
    decoded = parse_vietqr(action["qr_payload"])
    assert decoded.amount == 150000
    assert decoded.purpose == payment["provider_reference"]

    png = await client.get(action["qr_image_url"], headers=merchant.headers)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert barcode.text == action["qr_payload"]

    svg = await client.get(f"/v1/payments/{payment['id']}/qr.svg", headers=merchant.headers)
    assert svg.status_code == 200 and svg.content.lstrip().startswith(b"<?xml")


async def test_payer_transfer_succeeds_the_payment_and_posts_the_ledger(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    paid = await pay(client, merchant, payment["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded"
    assert paid.json()["amount_received"] == 150000

    ledger = (await client.get(f"/v1/ledger/transactions?payment_id={payment['id']}", headers=merchant.headers)).json()
    [tx] = ledger["data"]
    assert tx["kind"] == "payment_received"
    assert sorted((e["direction"], e["amount"]) for e in tx["entries"]) == [
        ("credit", 150000),
        ("debit", 150000),
    ]

    events = (await client.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert [e["type"] for e in events] == ["payment.succeeded", "payment.requires_action"]
    assert events[0]["data"]["object"]["status"] == "succeeded"

    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()
    assert balance == {
        "object": "balance",
        "balances": [{"currency": "VND", "collected": 150000, "refunded": 0, "net": 150000}],
    }


async def test_refund_goes_back_through_the_bank(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=200000)
    await pay(client, merchant, payment["id"])

    refund = await client.post(
        "/v1/refunds", json={"payment_id": payment["id"], "amount": 50000}, headers=merchant.idem()
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "succeeded"
    assert refund.json()["id"].startswith("re_")

    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["amount_refunded"] == 50000
    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()["balances"][0]
    assert (balance["collected"], balance["refunded"], balance["net"]) == (200000, 50000, 150000)
    kinds = [
        t["kind"]
        for t in (
            await client.get(f"/v1/ledger/transactions?refund_id={refund.json()['id']}", headers=merchant.headers)
        ).json()["data"]
    ]
    assert kinds == ["refund_succeeded"]


async def test_payments_paid_after_a_restart_are_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, settings: Settings, clock: ManualClock
) -> None:
    first = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, first["id"])
    restarted = create_app(settings, clock=clock, background=False)
    async with (
        LifespanManager(restarted),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url=BASE_URL) as second_client,
    ):
        second = await create_vietqr_payment(second_client, merchant)
        assert (await pay(second_client, merchant, second["id"])).json()["status"] == "succeeded"
