"""Every JSON response the API serves — hand-built dicts, stored event bodies — is exactly its documented model.

Each body is validated against the pydantic model the OpenAPI document names for that route and dumped back:
a field the model does not declare, a missing one or a wrong type fails, so the fast dicts and the schema
cannot drift. The test fails too when a documented response is left unchecked.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from gateway.adapters.telco import wire as telco_wire
from gateway.bills.schemas import BillImportResult, BillObject
from gateway.collections.schemas import BillInquiry, CollectionObject
from gateway.customers.schemas import CustomerObject
from gateway.domain import EventType
from gateway.events.api import EventObject
from gateway.ledger.api import BalanceObject, LedgerTransactionObject
from gateway.merchants.schemas import (
    MerchantObject,
    MerchantWithKey,
    NewApiKey,
    ProviderAccountObject,
    RevokedApiKey,
)
from gateway.notifications.schemas import BillerList, VerifyOrderAnswer
from gateway.org_units.schemas import OrgUnitObject
from gateway.partners.schemas import MerchantPartnerObject, PartnerObject, PartnerWithSecret
from gateway.payments.schemas import PaymentObject
from gateway.receipts.schemas import ReceiptObject, ReceiptSettingsObject
from gateway.refunds.schemas import RefundObject
from gateway.reports.schemas import ReportObject
from gateway.runtime import Runtime
from gateway.schemas import ListEnvelope
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.openapi import event_model
from gateway.webhooks.schemas import AttemptObject, DeletedEndpoint, EndpointObject, RedeliveryObject
from tests.allocation.factories import make_customer
from tests.allocation.test_allocation import transfer
from tests.collections.factories import BILLER, biller_with_partner
from tests.conftest import ADMIN, VIETQR_LIVE, MerchantHandle, events_of, pay, sandbox_secrets


def assert_is_model(model: type[BaseModel], document: Any) -> None:
    """Valid, and nothing but the model: dumping what was validated gives the document back unchanged."""
    assert model.model_validate(document).model_dump(mode="json", exclude_unset=True) == document


class Checked:
    def __init__(self, app: FastAPI) -> None:
        self.document = app.openapi()
        self.routes: set[tuple[str, str]] = set()

    def __call__(self, response: httpx.Response, method: str, path: str, model: type[BaseModel]) -> dict[str, Any]:
        assert response.request.method == method, response.request
        operation = self.document["paths"][path][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], (method, path, response.status_code, response.text)
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        # FastAPI names a generic model's component ListEnvelope_PaymentObject_.
        assert schema["$ref"].rsplit("/", 1)[1] == re.sub(r"[^a-zA-Z0-9.\-_]", "_", model.__name__)
        body: dict[str, Any] = response.json()
        assert_is_model(model, body)
        self.routes.add((method, path))
        return body

    def documented(self) -> set[tuple[str, str]]:
        return {
            (method.upper(), path)
            for path, operations in self.document["paths"].items()
            for method, operation in operations.items()
            if any(
                "$ref" in answer.get("content", {}).get("application/json", {}).get("schema", {})
                for answer in operation["responses"].values()
            )
        }


async def test_every_response_is_its_documented_model(app: FastAPI, client: httpx.AsyncClient, rt: Runtime) -> None:
    check = Checked(app)

    created = check(
        await client.post("/v1/merchants", json={"name": "Bach Mai", "category": "hospital"}, headers=ADMIN),
        "POST",
        "/v1/merchants",
        MerchantWithKey,
    )
    merchant_id = created["id"]
    merchant = MerchantHandle(merchant_id, created["api_key"]["secret"])
    check(await client.get("/v1/merchants", headers=ADMIN), "GET", "/v1/merchants", ListEnvelope[MerchantObject])
    check(
        await client.get(f"/v1/merchants/{merchant_id}", headers=ADMIN),
        "GET",
        "/v1/merchants/{merchant_id}",
        MerchantObject,
    )
    key = check(
        await client.post(f"/v1/merchants/{merchant_id}/api-keys", json={"mode": "test"}, headers=ADMIN),
        "POST",
        "/v1/merchants/{merchant_id}/api-keys",
        NewApiKey,
    )
    check(
        await client.delete(f"/v1/merchants/{merchant_id}/api-keys/{key['id']}", headers=ADMIN),
        "DELETE",
        "/v1/merchants/{merchant_id}/api-keys/{key_id}",
        RevokedApiKey,
    )
    check(
        await client.patch(f"/v1/merchants/{merchant_id}", json={"biller_code": "BACHMAI"}, headers=ADMIN),
        "PATCH",
        "/v1/merchants/{merchant_id}",
        MerchantObject,
    )
    partner = check(
        await client.post("/v1/partners", json={"name": "Vietcombank", "code": "VCB", "kind": "bank"}, headers=ADMIN),
        "POST",
        "/v1/partners",
        PartnerWithSecret,
    )
    check(await client.get("/v1/partners", headers=ADMIN), "GET", "/v1/partners", ListEnvelope[PartnerObject])
    check(
        await client.get(f"/v1/partners/{partner['id']}", headers=ADMIN),
        "GET",
        "/v1/partners/{partner_id}",
        PartnerObject,
    )
    check(
        await client.post(f"/v1/partners/{partner['id']}/rotate-secret", json={}, headers=ADMIN),
        "POST",
        "/v1/partners/{partner_id}/rotate-secret",
        PartnerWithSecret,
    )
    check(
        await client.put(
            f"/v1/merchants/{merchant_id}/partners/{partner['id']}", json={"enabled": True}, headers=ADMIN
        ),
        "PUT",
        "/v1/merchants/{merchant_id}/partners/{partner_id}",
        MerchantPartnerObject,
    )
    check(
        await client.put(f"/v1/merchants/{merchant_id}/providers/vietqr", json=VIETQR_LIVE, headers=ADMIN),
        "PUT",
        "/v1/merchants/{merchant_id}/providers/{provider}",
        ProviderAccountObject,
    )
    check(
        await client.put(
            f"/v1/merchants/{merchant_id}/receipts",
            json={"enabled": True, "template": "01BLP0-001", "series": "AA-26E", "seller": {"name": "Bệnh viện"}},
            headers=ADMIN,
        ),
        "PUT",
        "/v1/merchants/{merchant_id}/receipts",
        ReceiptSettingsObject,
    )

    endpoint = check(
        await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/"}, headers=merchant.headers),
        "POST",
        "/v1/webhook-endpoints",
        EndpointObject,
    )
    endpoint_path = f"/v1/webhook-endpoints/{endpoint['id']}"

    body = {"amount": 150000, "method": "vietqr", "reference": "HIS-2026-000123"}
    payment = check(
        await client.post("/v1/payments", json=body, headers=merchant.idem()), "POST", "/v1/payments", PaymentObject
    )
    check(
        await client.post(f"/v1/payments/{payment['id']}/confirm", headers=merchant.idem()),
        "POST",
        "/v1/payments/{payment_id}/confirm",
        PaymentObject,
    )
    check(
        await pay(client, merchant, payment["id"]),
        "POST",
        "/v1/test-helpers/payments/{payment_id}/pay",
        PaymentObject,
    )
    check(
        await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers),
        "GET",
        "/v1/payments/{payment_id}",
        PaymentObject,
    )
    other = (await client.post("/v1/payments", json={**body, "reference": "R2"}, headers=merchant.idem())).json()
    check(
        await client.post(f"/v1/payments/{other['id']}/cancel", headers=merchant.idem()),
        "POST",
        "/v1/payments/{payment_id}/cancel",
        PaymentObject,
    )
    check(
        await client.get("/v1/payments", headers=merchant.headers), "GET", "/v1/payments", ListEnvelope[PaymentObject]
    )

    refund = check(
        await client.post("/v1/refunds", json={"payment_id": payment["id"], "amount": 50000}, headers=merchant.idem()),
        "POST",
        "/v1/refunds",
        RefundObject,
    )
    check(
        await client.get(f"/v1/refunds/{refund['id']}", headers=merchant.headers),
        "GET",
        "/v1/refunds/{refund_id}",
        RefundObject,
    )
    check(await client.get("/v1/refunds", headers=merchant.headers), "GET", "/v1/refunds", ListEnvelope[RefundObject])

    bills = [
        {"number": "HD-1", "amount": 150000, "customer_code": "PA01", "customer_name": "Nguyễn Văn An"},
        {"number": "HD-2", "amount": 0, "customer_code": "PA01"},
    ]
    imported = check(
        await client.post("/v1/bills/import", json={"bills": bills}, headers=merchant.idem()),
        "POST",
        "/v1/bills/import",
        BillImportResult,
    )
    assert (imported["created"], len(imported["errors"])) == (1, 1)
    receipts = check(
        await client.get("/v1/receipts", headers=merchant.headers), "GET", "/v1/receipts", ListEnvelope[ReceiptObject]
    )["data"]
    assert {r["status"] for r in receipts} == {"issued", "canceled"}  # the partial refund replaced the first
    check(
        await client.get(f"/v1/receipts/{receipts[0]['id']}", headers=merchant.headers),
        "GET",
        "/v1/receipts/{receipt_id}",
        ReceiptObject,
    )

    check(
        await client.get("/v1/ledger/transactions", headers=merchant.headers),
        "GET",
        "/v1/ledger/transactions",
        ListEnvelope[LedgerTransactionObject],
    )
    check(await client.get("/v1/balance", headers=merchant.headers), "GET", "/v1/balance", BalanceObject)

    customer = check(
        await client.post("/v1/customers", json={"code": "PA-RM-2", "name": "Nguyễn Văn An"}, headers=merchant.idem()),
        "POST",
        "/v1/customers",
        CustomerObject,
    )
    customer_path = f"/v1/customers/{customer['id']}"
    check(
        await client.get(customer_path, headers=merchant.headers), "GET", "/v1/customers/{customer_id}", CustomerObject
    )
    check(
        await client.patch(customer_path, json={"phone": "0912345678"}, headers=merchant.headers),
        "PATCH",
        "/v1/customers/{customer_id}",
        CustomerObject,
    )
    check(
        await client.get("/v1/customers", headers=merchant.headers),
        "GET",
        "/v1/customers",
        ListEnvelope[CustomerObject],
    )
    bill_body = {
        "customer": customer["id"],
        "number": "HD-RM-1",
        "amount": 250000,
        "lines": [{"description": "Điện", "amount": 250000}],
    }
    # The customer holds credit (a static-QR transfer): the bill takes it (bill events).
    await transfer(client, merchant, customer["id"], 100000)
    paid_in_part = check(
        await client.post("/v1/bills", json=bill_body, headers=merchant.idem()), "POST", "/v1/bills", BillObject
    )
    assert (paid_in_part["status"], paid_in_part["amount_paid"]) == ("partially_paid", 100000)
    bill = (await client.post("/v1/bills", json={**bill_body, "number": "HD-RM-2"}, headers=merchant.idem())).json()
    check(
        await client.get(f"/v1/bills/{bill['id']}", headers=merchant.headers), "GET", "/v1/bills/{bill_id}", BillObject
    )
    check(await client.get("/v1/bills", headers=merchant.headers), "GET", "/v1/bills", ListEnvelope[BillObject])
    check(
        await client.post(f"/v1/bills/{bill['id']}/void", headers=merchant.idem()),
        "POST",
        "/v1/bills/{bill_id}/void",
        BillObject,
    )

    events = check(
        await client.get("/v1/events?limit=100", headers=merchant.headers),
        "GET",
        "/v1/events",
        ListEnvelope[EventObject],
    )["data"]
    assert {e["type"] for e in events} >= {
        "payment.succeeded",
        "payment.canceled",
        "refund.created",
        "bill.created",
        "bill.partially_paid",
        "bill.voided",
        "customer.balance_changed",
        "receipt.issued",
        "receipt.canceled",
    }
    for event in events:  # what a receiver gets, against the document's `webhooks`
        assert_is_model(event_model(EventType(event["type"])), event)
    check(
        await client.get(f"/v1/events/{events[0]['id']}", headers=merchant.headers),
        "GET",
        "/v1/events/{event_id}",
        EventObject,
    )
    check(
        await client.post(f"/v1/events/{events[0]['id']}/redeliver", json={}, headers=merchant.idem()),
        "POST",
        "/v1/events/{event_id}/redeliver",
        RedeliveryObject,
    )

    dispatcher = Dispatcher(rt, timeout=1.0)
    try:
        assert await dispatcher.run_once() > 0  # nobody listens there: failed attempts to list
    finally:
        await dispatcher.aclose()
    attempts = check(
        await client.get(f"{endpoint_path}/deliveries", headers=merchant.headers),
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries",
        ListEnvelope[AttemptObject],
    )
    assert attempts["data"]
    check(
        await client.get("/v1/webhook-endpoints", headers=merchant.headers),
        "GET",
        "/v1/webhook-endpoints",
        ListEnvelope[EndpointObject],
    )
    check(
        await client.get(endpoint_path, headers=merchant.headers),
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}",
        EndpointObject,
    )
    check(
        await client.patch(endpoint_path, json={"status": "disabled"}, headers=merchant.headers),
        "PATCH",
        "/v1/webhook-endpoints/{endpoint_id}",
        EndpointObject,
    )
    check(
        await client.post(f"{endpoint_path}/rotate-secret", json={}, headers=merchant.idem()),
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        EndpointObject,
    )
    check(
        await client.delete(endpoint_path, headers=merchant.headers),
        "DELETE",
        "/v1/webhook-endpoints/{endpoint_id}",
        DeletedEndpoint,
    )

    customer_id = await make_customer(rt, merchant, code="RM-1")
    check(
        await client.post(
            f"/v1/test-helpers/customers/{customer_id}/transfer", json={"amount": 50000}, headers=merchant.headers
        ),
        "POST",
        "/v1/test-helpers/customers/{customer_id}/transfer",
        PaymentObject,
    )

    verify = {"billcode": "HD0001", "merchant_code": "UNKNOWN", "order_id": "VT1", "check_sum": "x"}
    check(
        await client.post("/v1/providers/viettel_money/verify", data=verify),
        "POST",
        "/v1/providers/{provider}/verify",
        VerifyOrderAnswer,
    )
    keys = sandbox_secrets(rt, "viettel_money")
    billers = {"cmd": "BILLER_LIST", "version": "2.0"}
    billers["check_sum"] = telco_wire.sign(
        keys["hash_key"], keys["access_code"], billers, telco_wire.BILLERS_SIGNED, "base64"
    )
    check(
        await client.get("/v1/providers/viettel_money/billers", params=billers),
        "GET",
        "/v1/providers/{provider}/billers",
        BillerList,
    )

    partner = (await biller_with_partner(rt, merchant, code="RMBANK")).client(client, rt)
    check(await partner.inquiry(BILLER, "RM-1"), "POST", "/v1/collect/inquiry", BillInquiry)
    collected = check(
        await partner.pay(BILLER, "RM-1", 20000, transaction_id="RM-T1", paid_at="2026-11-22T10:00:00Z"),
        "POST",
        "/v1/collect/payments",
        CollectionObject,
    )
    check(
        await partner.pay(BILLER, "RM-1", 20000, transaction_id="RM-T1", paid_at="2026-11-22T10:00:00Z"),
        "POST",
        "/v1/collect/payments",
        CollectionObject,
    )  # the replay's 200
    check(await partner.status("RM-T1"), "GET", "/v1/collect/payments/{partner_transaction_id}", CollectionObject)
    reversed_ = check(await partner.reverse("RM-T1", "test"), "POST", "/v1/collect/reversals", CollectionObject)
    assert (collected["status"], reversed_["status"]) == ("accepted", "reversed")
    (event,) = await events_of(client, merchant, type="collection.reversed")
    assert_is_model(event_model(EventType.collection_reversed), event)

    unit = {"code": "RM-HT", "name": "Hà Tĩnh", "kind": "province", "online_target": 0.5}
    check(await client.post("/v1/org-units", json=unit, headers=ADMIN), "POST", "/v1/org-units", OrgUnitObject)
    check(await client.get("/v1/org-units", headers=ADMIN), "GET", "/v1/org-units", ListEnvelope[OrgUnitObject])
    check(
        await client.get("/v1/org-units/RM-HT", headers=merchant.headers), "GET", "/v1/org-units/{code}", OrgUnitObject
    )
    check(
        await client.patch("/v1/org-units/RM-HT", json={"online_target": None}, headers=ADMIN),
        "PATCH",
        "/v1/org-units/{code}",
        OrgUnitObject,
    )
    for group_by, org_unit in (("org_unit", None), ("day", "RM-HT")):
        params = {"from": "2026-11-01", "to": "2026-11-30", "group_by": group_by, "org_unit": org_unit or ""}
        check(
            await client.get("/v1/reports/collections", params={k: v for k, v in params.items() if v}, headers=ADMIN),
            "GET",
            "/v1/reports/collections",
            ReportObject,
        )

    assert check.routes == check.documented()
