"""A merchant's own provider accounts: live mode uses them, bad settings are refused, secrets are sealed."""

from __future__ import annotations

import httpx
from sqlalchemy import inspect, text

from gateway.adapters.emvco import parse_vietqr
from gateway.runtime import Runtime
from tests.conftest import (
    ADMIN,
    VIETQR_LIVE,
    MerchantHandle,
    assert_problem,
    create_vietqr_payment,
    ids_listed,
    new_key,
    pay,
)

PAYMENT = {"amount": 150000, "method": "vietqr", "reference": "HIS-2026-000123"}


async def test_live_mode_uses_the_merchants_own_provider_account(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    live = MerchantHandle(id=merchant.id, key=(await new_key(client, merchant.id, "live"))["secret"])

    unconfirmed = await client.post("/v1/payments", json={**PAYMENT, "confirm": False}, headers=live.idem())
    assert unconfirmed.status_code == 201, unconfirmed.text
    assert unconfirmed.json()["livemode"] is True
    assert unconfirmed.json()["status"] == "requires_confirmation"

    refused = await client.post("/v1/payments", json={**PAYMENT, "confirm": True}, headers=live.idem())
    assert_problem(refused, 422, "provider_not_configured")

    put = await client.put(f"/v1/merchants/{merchant.id}/providers/vietqr", json=VIETQR_LIVE, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert "whsec-live-1" not in put.text
    assert "webhook_secret" in put.json()["secrets_set"]
    async with rt.db.transaction() as session:
        stored = (await session.execute(text("SELECT secrets_encrypted FROM provider_accounts"))).scalars().all()
        whole_rows = (await session.execute(text("SELECT * FROM provider_accounts"))).all()
    assert len(stored) == 1 and stored[0]
    assert "whsec-live-1" not in stored[0]
    assert "whsec-live-1" not in repr([tuple(r) for r in whole_rows])

    confirmed = await client.post("/v1/payments", json={**PAYMENT, "confirm": True}, headers=live.idem())
    assert confirmed.status_code == 201, confirmed.text
    payment = confirmed.json()
    assert payment["livemode"] is True
    assert payment["status"] == "requires_action"
    qr = parse_vietqr(payment["next_action"]["qr_payload"])
    assert (qr.bank_bin, qr.account_number, qr.amount) == ("970436", "1017595600", 150000)

    later = await client.post(f"/v1/payments/{unconfirmed.json()['id']}/confirm", headers=live.idem())
    assert later.status_code == 200, later.text
    assert later.json()["status"] == "requires_action"
    later_qr = parse_vietqr(later.json()["next_action"]["qr_payload"])
    assert (later_qr.bank_bin, later_qr.account_number) == ("970436", "1017595600")

    # the sandbox payer exists only in test mode
    assert_problem(await pay(client, live, payment["id"]), 404, "not_found")
    still = (await client.get(f"/v1/payments/{payment['id']}", headers=live.headers)).json()
    assert (still["status"], still["amount_received"]) == ("requires_action", 0)

    # test and live objects never cross
    test_payment = await create_vietqr_payment(client, merchant)
    assert test_payment["livemode"] is False
    for live_id in (payment["id"], unconfirmed.json()["id"]):
        assert_problem(await client.get(f"/v1/payments/{live_id}", headers=merchant.headers), 404, "not_found")
        assert_problem(await pay(client, merchant, live_id), 404, "not_found")
    assert_problem(await client.get(f"/v1/payments/{test_payment['id']}", headers=live.headers), 404, "not_found")
    assert await ids_listed(client, "/v1/payments", merchant.headers) == [test_payment["id"]]
    assert set(await ids_listed(client, "/v1/payments", live.headers)) == {
        payment["id"],
        unconfirmed.json()["id"],
    }
    test_events = (await client.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert {e["data"]["object"]["id"] for e in test_events} == {test_payment["id"]}


async def test_put_provider_refuses_bad_settings(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    bad_bin = await client.put(
        f"/v1/merchants/{merchant.id}/providers/vietqr",
        json={**VIETQR_LIVE, "bank_bin": "97043"},
        headers=ADMIN,
    )
    assert_problem(bad_bin, 422, "validation_error", ["body", "bank_bin"])
    assert "whsec-live-1" not in bad_bin.text

    unknown = await client.put(f"/v1/merchants/{merchant.id}/providers/nope", json=VIETQR_LIVE, headers=ADMIN)
    assert_problem(unknown, 404, "not_found")

    no_merchant = await client.put("/v1/merchants/mch_nope/providers/vietqr", json=VIETQR_LIVE, headers=ADMIN)
    assert_problem(no_merchant, 404, "not_found")

    # nothing was stored: a live payment still cannot be confirmed
    live = MerchantHandle(id=merchant.id, key=(await new_key(client, merchant.id, "live"))["secret"])
    refused = await client.post("/v1/payments", json={**PAYMENT, "confirm": True}, headers=live.idem())
    assert_problem(refused, 422, "provider_not_configured")


async def test_a_database_dump_reveals_no_key_or_secret(client: httpx.AsyncClient, rt: Runtime) -> None:
    """Secrets are shown once in a response; whatever the gateway stores (including what it keeps to replay an
    idempotent request) must not reveal them."""
    created = await client.post(
        "/v1/merchants",
        json={"name": "Cong dich vu cong", "category": "government"},
        headers={**ADMIN, "Idempotency-Key": "create-merchant-1"},
    )
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    issued = await client.post(
        f"/v1/merchants/{merchant_id}/api-keys",
        json={"mode": "live"},
        headers={**ADMIN, "Idempotency-Key": "issue-live-key-1"},
    )
    assert issued.status_code == 201, issued.text
    put = await client.put(f"/v1/merchants/{merchant_id}/providers/vietqr", json=VIETQR_LIVE, headers=ADMIN)
    assert put.status_code == 200, put.text
    secrets = [created.json()["api_key"]["secret"], issued.json()["secret"], VIETQR_LIVE["webhook_secret"]]

    async with rt.db.transaction() as session:
        tables = await session.run_sync(lambda s: inspect(s.connection()).get_table_names())
        dump = []
        for table in tables:
            rows = (await session.execute(text(f'SELECT * FROM "{table}"'))).all()  # noqa: S608
            dump.extend(f"{table}: {tuple(row)!r}" for row in rows)
    text_dump = "\n".join(dump)
    assert "api_keys" in tables and "provider_accounts" in tables
    for secret in secrets:
        leaking = [line.split(":", 1)[0] for line in dump if secret in line]
        assert secret not in text_dump, f"a secret is stored in clear in {sorted(set(leaking))}"
