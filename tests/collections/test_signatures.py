"""§12 signatures: only the partner's secret, over the exact bytes, within 300 s, opens the partner routes; every
request is kept raw with its answer."""

from __future__ import annotations

import httpx
import orjson

from gateway.clock import ManualClock
from gateway.collections.client import PartnerClient
from gateway.partners.signing import signed_headers
from gateway.runtime import Runtime
from tests.allocation.factories import make_customer
from tests.collections.factories import BILLER, biller_with_partner, make_partner
from tests.conftest import MerchantHandle, assert_problem, sql

INQUIRY = "/v1/collect/inquiry"
BODY = orjson.dumps({"biller_code": BILLER, "customer_code": "PA01000123456"})


async def test_missing_wrong_stale_future_or_borrowed_signatures_are_401(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, clock: ManualClock
) -> None:
    partner = await biller_with_partner(rt, merchant)
    stranger = await make_partner(rt, "MB")  # a real partner, not enabled here, with its own secret
    await make_customer(rt, merchant)
    now = int(clock.now().timestamp())

    def post(headers: dict[str, str], body: bytes = BODY) -> object:
        return client.post(INQUIRY, content=body, headers={"Content-Type": "application/json", **headers})

    good = signed_headers(partner.id, partner.secret, now, "POST", INQUIRY, BODY)
    assert (await post(good)).status_code == 200
    for name in ("X-Partner-Id", "X-Timestamp", "X-Signature"):
        assert_problem(await post({k: v for k, v in good.items() if k != name}), 401, "invalid_signature")
    assert_problem(await post({**good, "X-Signature": "0" * 64}), 401, "invalid_signature")
    assert_problem(await post(good, BODY.replace(b"PA01", b"PA02")), 401, "invalid_signature")  # tampered body
    for moved in (-301, 301):  # stale, and from the future
        stamped = signed_headers(partner.id, partner.secret, now + moved, "POST", INQUIRY, BODY)
        assert_problem(await post(stamped), 401, "invalid_signature")
    edge = signed_headers(partner.id, partner.secret, now - 300, "POST", INQUIRY, BODY)
    assert (await post(edge)).status_code == 200
    # Signed with another partner's secret, or for another path or method.
    borrowed = signed_headers(partner.id, stranger.secret, now, "POST", INQUIRY, BODY)
    assert_problem(await post(borrowed), 401, "invalid_signature")
    other_path = signed_headers(partner.id, partner.secret, now, "POST", "/v1/collect/payments", BODY)
    assert_problem(await post(other_path), 401, "invalid_signature")
    assert_problem(await post({**good, "X-Partner-Id": "ptn_nobody"}), 401, "invalid_signature")
    # The stranger's own valid signature gets past the check, then finds no biller of its own.
    assert_problem(
        await post(signed_headers(stranger.id, stranger.secret, now, "POST", INQUIRY, BODY)), 404, "biller_not_found"
    )

    # A request signed now is refused once the clock moves on past the tolerance.
    replayed = PartnerClient(client, partner.id, partner.secret, now=lambda: now)
    assert (await replayed.inquiry(BILLER, "PA01000123456")).status_code == 200
    clock.advance(301)
    assert_problem(await replayed.inquiry(BILLER, "PA01000123456"), 401, "invalid_signature")


async def test_every_request_is_stored_with_its_answer_and_unsigned_ones_only_in_part(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    handle = await biller_with_partner(rt, merchant)
    partner = handle.client(client, rt)
    await make_customer(rt, merchant)
    paid = await partner.pay(BILLER, "PA01000123456", 20000, transaction_id="VCB-1")
    assert paid.status_code == 201
    assert (await partner.inquiry(BILLER, "PA-NOBODY")).status_code == 404
    huge = b'{"x": "' + b"a" * 20000 + b'"}'
    forged = await client.post(
        INQUIRY,
        content=huge,
        headers={"Content-Type": "application/json", "X-Partner-Id": handle.id, "X-Signature": "00"},
    )
    assert_problem(forged, 401, "invalid_signature")

    rows = await sql(
        rt,
        "SELECT partner_id, verified, http_method, path, headers, body, status_code, outcome, collection_id "
        "FROM partner_requests ORDER BY id",
    )
    assert [(r["path"], r["status_code"], r["outcome"], r["verified"]) for r in rows] == [
        ("/v1/collect/payments", 201, paid.json()["id"], True),
        ("/v1/collect/inquiry", 404, "customer_not_found", True),
        ("/v1/collect/inquiry", 401, "invalid_signature", False),
    ]
    accepted = rows[0]
    assert accepted["collection_id"] == paid.json()["id"]
    assert accepted["partner_id"] == handle.id
    assert orjson.loads(accepted["body"])["partner_transaction_id"] == "VCB-1"  # the raw body, whole
    headers = accepted["headers"] if isinstance(accepted["headers"], dict) else orjson.loads(accepted["headers"])
    assert set(headers) >= {"x-partner-id", "x-timestamp", "x-signature", "content-type"}
    assert (rows[2]["partner_id"], len(rows[2]["body"])) == (handle.id, 4096)  # bounded: anyone can post
    # The secret is nowhere in what was kept.
    assert all(handle.secret not in str(r) for r in rows)
