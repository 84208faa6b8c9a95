"""POST /v1/bills/import (§11): JSON and CSV, per-row errors, idempotent re-imports, customers created by code,
balances applied, bill.created events — on SQLite and PostgreSQL, outcomes read back from the database."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from gateway.bills.models import Bill
from gateway.bills.service import bill_object
from gateway.runtime import Runtime
from tests.allocation.test_allocation import transfer
from tests.conftest import MerchantHandle, assert_problem, events_of, sql

IMPORT = "/v1/bills/import"
NAME = "Nguyễn Văn Ánh"


async def post_json(
    client: httpx.AsyncClient, merchant: MerchantHandle, bills: list[Any], key: str | None = None
) -> httpx.Response:
    return await client.post(IMPORT, json={"bills": bills}, headers=merchant.idem(key))


async def post_csv(
    client: httpx.AsyncClient, merchant: MerchantHandle, body: str | bytes, key: str | None = None
) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    headers = {**merchant.idem(key), "Content-Type": "text/csv"}
    return await client.post(IMPORT, content=content, headers=headers)


def result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["object"] == "bill_import"
    return body


async def bills_in_db(rt: Runtime) -> list[dict[str, Any]]:
    return await sql(
        rt,
        "SELECT b.number, b.amount, b.currency, b.description, b.period, b.due_date, b.amount_rule, b.status,"
        " b.amount_paid, b.customer_id, c.code, c.name FROM bills b JOIN customers c ON c.id = b.customer_id"
        " ORDER BY b.number",
    )


async def count(rt: Runtime, table: str) -> int:
    return int((await sql(rt, f"SELECT count(*) AS n FROM {table}"))[0]["n"])  # noqa: S608 (a fixed table name)


def bill(number: str, amount: int = 150000, **extra: Any) -> dict[str, Any]:
    return {"number": number, "amount": amount, "customer_code": "PA01", "customer_name": NAME, **extra}


async def test_json_import_creates_bills_and_customers(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    rows = [
        bill("HD-1", due_date="2026-11-30", period="2026-11", description="Tiền điện tháng 11"),
        bill("HD-2", 80000, customer_code="pa01"),  # the same customer: codes match case-insensitively
        {
            "number": "HD-3",
            "amount": 50000,
            "customer_code": "PA02",
            "customer_name": "Trần Thị Bình",
            "amount_rule": "exact",
            "lines": [{"description": "Nước", "amount": 30000}, {"description": "Phí", "amount": 20000}],
            "metadata": {"route": "7"},
        },
    ]
    body = result(await post_json(client, merchant, rows))
    assert body == {"object": "bill_import", "created": 3, "unchanged": 0, "errors": []}
    stored = await bills_in_db(rt)
    assert [(b["number"], b["amount"], b["code"], b["status"]) for b in stored] == [
        ("HD-1", 150000, "PA01", "open"),
        ("HD-2", 80000, "PA01", "open"),
        ("HD-3", 50000, "PA02", "open"),
    ]
    assert stored[0]["customer_id"] == stored[1]["customer_id"]
    assert str(stored[0]["due_date"]) == "2026-11-30" and stored[0]["period"] == "2026-11"
    assert stored[2]["amount_rule"] == "exact"
    customers = await sql(rt, "SELECT code, code_key, name, balance, payment_code FROM customers ORDER BY code")
    assert [(c["code"], c["code_key"], c["name"], c["balance"]) for c in customers] == [
        ("PA01", "PA01", NAME, 0),
        ("PA02", "PA02", "Trần Thị Bình", 0),
    ]
    assert all(c["payment_code"] and len(c["payment_code"]) <= 20 for c in customers)

    # The event document is the bill's document (one source: bill_object of the stored bill).
    events = await events_of(client, merchant, type="bill.created")
    assert sorted(e["data"]["object"]["number"] for e in events) == ["HD-1", "HD-2", "HD-3"]
    async with rt.db.transaction() as session:
        from sqlalchemy import select

        stored_bill = (await session.execute(select(Bill).where(Bill.number == "HD-3"))).scalar_one()
        expected = bill_object(stored_bill, [], [])
    event = next(e for e in events if e["data"]["object"]["number"] == "HD-3")
    assert event["data"]["object"] == {**expected, "amount_rule": "exact", "status": "open"}


async def test_customer_by_id_or_code_object_and_unknown_customers(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    result(await post_json(client, merchant, [bill("HD-1")]))
    customer_id = (await sql(rt, "SELECT id FROM customers"))[0]["id"]
    rows = [
        {"number": "HD-2", "amount": 1000, "customer": customer_id},
        {"number": "HD-3", "amount": 1000, "customer": {"code": "pa01"}},
        {"number": "HD-4", "amount": 1000, "customer": "cus_nope"},
        {"number": "HD-5", "amount": 1000, "customer_code": "NOBODY"},
        {"number": "HD-6", "amount": 1000},
    ]
    body = result(await post_json(client, merchant, rows))
    assert body["created"] == 2
    assert [(e["row"], e["code"]) for e in body["errors"]] == [
        (3, "customer_not_found"),
        (4, "customer_not_found"),
        (5, "validation_error"),
    ]
    assert "NOBODY" in body["errors"][1]["detail"] and "customer" in body["errors"][2]["detail"]
    assert await count(rt, "customers") == 1
    assert {b["customer_id"] for b in await bills_in_db(rt)} == {customer_id}


CSV_HEADER = "number,amount,currency,description,period,due_date,amount_rule,customer_code,customer_name"


async def test_csv_with_bom_crlf_and_quoted_commas(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    body = (
        "\ufeff" + CSV_HEADER + "\r\n"
        'HD-1,150000,VND,"Điện, tháng 11",2026-11,2026-11-30,exact,PA01,"Nguyễn Văn Ánh"\r\n'
        "HD-2,80000,,,,,,PA02,Trần Thị Bình\r\n"
        "\r\n"  # a blank line is not a row
        "HD-3,70000,,,,,,PA01,\r\n"
    )
    created = result(await post_csv(client, merchant, body))
    assert created == {"object": "bill_import", "created": 3, "unchanged": 0, "errors": []}
    stored = await bills_in_db(rt)
    assert stored[0]["description"] == "Điện, tháng 11" and stored[0]["amount_rule"] == "exact"
    assert stored[1]["currency"] == "VND" and stored[1]["amount_rule"] == "partial" and stored[1]["due_date"] is None
    assert stored[2]["customer_id"] == stored[0]["customer_id"]
    assert {b["name"] for b in stored} == {NAME, "Trần Thị Bình"}


async def test_csv_with_lf_and_customer_id_column(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    result(await post_json(client, merchant, [bill("HD-0")]))
    customer_id = (await sql(rt, "SELECT id FROM customers"))[0]["id"]
    body = f"number,amount,customer,customer_code\nHD-1,1000,{customer_id},\nHD-2,2000,,pa01\n"
    assert result(await post_csv(client, merchant, body))["created"] == 2
    assert {b["customer_id"] for b in await bills_in_db(rt)} == {customer_id}


async def test_nfc_and_nfd_names_are_one_customer_stored_nfc(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    nfd = unicodedata.normalize("NFD", NAME)
    assert nfd != NAME
    body = (
        f"number,amount,customer_code,customer_name,description\nHD-1,1000,PA01,{nfd},{nfd}\nHD-2,1000,PA01,{NAME},x\n"
    )
    assert result(await post_csv(client, merchant, body))["created"] == 2
    customers = await sql(rt, "SELECT name FROM customers")
    assert [c["name"] for c in customers] == [NAME]
    assert (await bills_in_db(rt))[0]["description"] == NAME
    # JSON too; and the same bill sent with the other normal form is the same content.
    again = result(
        await post_json(
            client, merchant, [{"number": "HD-1", "amount": 1000, "customer_code": "PA01", "description": NAME}]
        )
    )
    assert again["unchanged"] == 1, again


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("amount,customer_code,customer_name", "number"),
        ("number,customer_code", "amount"),
        ("number,amount,customer_name", "customer_code"),
        ("number,amount,customer_code,ammount", "ammount"),
        ("number,amount,customer_code,lines", "lines"),
    ],
)
async def test_csv_header_problems_refuse_the_whole_file(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, header: str, column: str
) -> None:
    body = header + "\nHD-1,1000,PA01,x\n"
    problem = assert_problem(await post_csv(client, merchant, body), 422, "validation_error", ["body", column])
    assert column in problem["detail"]
    assert await count(rt, "bills") == 0 and await count(rt, "customers") == 0


async def test_bad_rows_are_reported_and_the_others_stored(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    body = (
        "number,amount,due_date,amount_rule,customer_code,customer_name\n"
        f"HD-1,1000,2026-11-30,,PA01,{NAME}\n"
        "HD-2,1000,2026-13-45,,PA01,\n"  # 2: bad date
        "HD-3,abc,,,PA01,\n"  # 3: non-numeric amount
        "HD-4,-5,,,PA01,\n"  # 4: negative amount
        "HD-5,0,,,PA01,\n"  # 5: zero
        "HD-6,1.5,,,PA01,\n"  # 6: not an integer
        "HD-7,1000,,sometimes,PA01,\n"  # 7: amount_rule
        "HD-8,1000,30/11/2026,,PA01,\n"  # 8: a date not written YYYY-MM-DD
        "HD-9,1000,,,PA01,,extra\n"  # 9: more cells than columns
        "HD-10,2000,,,bad code!,x\n"  # 10: customer code
        "HD-11,3000,,,PA01,\n"
    )
    body_json = result(await post_csv(client, merchant, body))
    assert body_json["created"] == 2 and body_json["unchanged"] == 0
    errors = {e["row"]: e for e in body_json["errors"]}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all(e["code"] == "validation_error" for e in errors.values())
    for row, field in [
        (2, "due_date"),
        (3, "amount"),
        (4, "amount"),
        (5, "amount"),
        (6, "amount"),
        (7, "amount_rule"),
        (8, "due_date"),
        (10, "customer_code"),
    ]:
        assert errors[row]["detail"].startswith(field), errors[row]
    assert [b["number"] for b in await bills_in_db(rt)] == ["HD-1", "HD-11"]


async def test_json_row_errors(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    rows: list[Any] = [
        bill("HD-1"),
        "not an object",
        bill("HD-3", "150000"),  # a string amount (JSON amounts are integers)
        bill("HD-4", 1.5),
        bill("HD-5", ammount=1),
        bill("HD-6", 100, lines=[{"description": "a", "amount": 50}]),  # lines not adding up
        bill("HD-7", 10**20),
        bill("HD-8", due_date=0),
        bill("HD-9", currency="XXX"),
    ]
    body = result(await post_json(client, merchant, rows))
    assert body["created"] == 1
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(n, "validation_error") for n in range(2, 10)]
    details = [e["detail"] for e in body["errors"]]
    assert "ammount: unknown field" in details[3]
    assert "lines" in details[4]
    assert details[6].startswith("due_date")


async def test_too_many_rows_stores_nothing(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    rows = [bill(f"HD-{i}", customer_code=f"C{i}") for i in range(10_001)]
    assert_problem(await post_json(client, merchant, rows), 422, "too_many_rows")
    csv_body = "number,amount,customer_code,customer_name\n" + "".join(f"HD-{i},1000,C{i},x\n" for i in range(10_001))
    assert_problem(await post_csv(client, merchant, csv_body), 422, "too_many_rows")
    assert await count(rt, "bills") == 0 and await count(rt, "customers") == 0 and await count(rt, "events") == 0


async def test_the_same_file_twice_is_unchanged(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    body = (
        CSV_HEADER
        + "\n"
        + "".join(f"HD-{i},{1000 + i},,,2026-11,2026-11-30,,C{i % 3},Khách {i % 3}\n" for i in range(20))
    )
    first = result(await post_csv(client, merchant, body, key="first"))
    assert (first["created"], first["unchanged"], first["errors"]) == (20, 0, [])
    second = await post_csv(client, merchant, body, key="second")
    assert result(second) == {"object": "bill_import", "created": 0, "unchanged": 20, "errors": []}
    assert "idempotent-replayed" not in second.headers
    replay = await post_csv(client, merchant, body, key="first")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first
    assert await count(rt, "bills") == 20 and await count(rt, "customers") == 3
    assert await count(rt, "events") == 20


async def test_same_number_other_content_is_a_conflict(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    result(await post_json(client, merchant, [bill("HD-1")]))
    rows = [
        bill("HD-1", 999),  # stored with another amount
        bill("HD-1"),  # the same as stored
        bill("HD-2", 500),
        bill("HD-2", 600),  # earlier in this file with another amount
        bill("HD-2", 500),  # earlier in this file, the same
        bill("HD-1", customer_code="PA09", customer_name="Khác"),  # another customer: conflict, nobody created
    ]
    body = result(await post_json(client, merchant, rows))
    assert (body["created"], body["unchanged"]) == (1, 2)
    assert [(e["row"], e["code"]) for e in body["errors"]] == [
        (1, "bill_number_conflict"),
        (4, "bill_number_conflict"),
        (6, "bill_number_conflict"),
    ]
    assert [(b["number"], b["amount"]) for b in await bills_in_db(rt)] == [("HD-1", 150000), ("HD-2", 500)]
    assert await count(rt, "customers") == 1


async def test_a_customer_balance_goes_to_its_imported_bill(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    result(await post_json(client, merchant, [bill("HD-1", 100000)]))
    customer_id = (await sql(rt, "SELECT id FROM customers"))[0]["id"]
    # 130,000 arrive for the customer: 100,000 pay HD-1, 30,000 become its balance.
    await transfer(client, merchant, customer_id, 130000)  # a static-QR transfer, through the bank's notification
    assert (await sql(rt, "SELECT balance FROM customers"))[0]["balance"] == 30000

    body = result(await post_json(client, merchant, [bill("HD-2", 50000), bill("HD-3", 10000, customer_code="NEW1")]))
    assert body["created"] == 2
    stored = {b["number"]: b for b in await bills_in_db(rt)}
    assert (stored["HD-2"]["status"], stored["HD-2"]["amount_paid"]) == ("partially_paid", 30000)
    assert (stored["HD-3"]["status"], stored["HD-3"]["amount_paid"]) == ("open", 0)
    balances = {c["code"]: c["balance"] for c in await sql(rt, "SELECT code, balance FROM customers")}
    assert balances == {"PA01": 0, "NEW1": 0}
    types = [e["type"] for e in await events_of(client, merchant)]
    assert "bill.partially_paid" in types and types.count("bill.created") == 3


async def test_bill_created_events_and_webhook_deliveries_for_each_bill(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    for events in (["bill.created"], ["payment.succeeded"]):
        response = await client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook", "events": events}, headers=merchant.headers
        )
        assert response.status_code == 201, response.text
    rows = [bill(f"HD-{i}", customer_code=f"C{i}") for i in range(50)] + [bill("HD-0", 1)]
    body = result(await post_json(client, merchant, rows))
    assert body["created"] == 50 and [e["code"] for e in body["errors"]] == ["bill_number_conflict"]
    stored = await sql(rt, "SELECT id, type, body FROM events WHERE type = 'bill.created'")
    assert len(stored) == 50
    deliveries = await sql(rt, "SELECT event_id FROM webhook_deliveries")
    assert sorted(d["event_id"] for d in deliveries) == sorted(e["id"] for e in stored)


async def test_missing_idempotency_key(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    response = await client.post(IMPORT, json={"bills": [bill("HD-1")]}, headers=merchant.headers)
    assert_problem(response, 400, "idempotency_key_missing")
    assert await count(rt, "bills") == 0


async def test_body_over_20_mb(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    body = b"number,amount,customer_code\n" + b"x" * (20 * 1024 * 1024)
    assert_problem(await post_csv(client, merchant, body), 413, "payload_too_large")


async def test_whole_request_problems(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    headers = merchant.idem()
    assert_problem(
        await client.post(IMPORT, content=b"<bills/>", headers={**headers, "Content-Type": "application/xml"}),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        await client.post(
            IMPORT, content=b"number,amount\n", headers={**merchant.idem(), "Content-Type": "text/csv; charset=latin-1"}
        ),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        await post_csv(client, merchant, "number,amount,customer_code\nHD-1,1,\xe9".encode("latin-1")),
        400,
        "malformed_csv",
    )
    assert_problem(
        await post_csv(client, merchant, 'number,amount,customer_code\nHD-1,1,"PA01\n'), 400, "malformed_csv"
    )
    assert_problem(await post_csv(client, merchant, ""), 422, "validation_error", ["body"])
    response = await client.post(
        IMPORT, content=b'{"bills": [', headers={**merchant.idem(), "Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")
    assert_problem(
        await client.post(IMPORT, json={"bill": []}, headers=merchant.idem()), 422, "validation_error", ["body", "bill"]
    )
    assert_problem(
        await client.post(IMPORT, json={"bills": {}}, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "bills"],
    )
    assert_problem(await client.post(IMPORT, json=[1], headers=merchant.idem()), 422, "validation_error", ["body"])
    assert await count(rt, "bills") == 0
    empty = result(await post_json(client, merchant, []))
    assert (empty["created"], empty["unchanged"], empty["errors"]) == (0, 0, [])


async def test_a_concurrently_stored_number_becomes_unchanged_or_conflict(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    """A bill another import stored between this import's lookup and its INSERT: ON CONFLICT skips it and the row is
    judged against what is stored (simulated by storing it before the INSERT, after the lookup)."""
    from gateway.bills import imports, repository

    result(await post_json(client, merchant, [bill("HD-0")]))
    customer_id = (await sql(rt, "SELECT id FROM customers"))[0]["id"]
    original = repository.contents_by_number
    calls = 0

    async def lookup_then_race(session: Any, scope: Any, numbers: Any) -> dict[str, tuple[Any, ...]]:
        nonlocal calls
        calls += 1
        found = await original(session, scope, numbers)
        if calls == 1:  # the other import commits HD-1 (same content) and HD-2 (other content) now
            for number, amount in (("HD-1", 150000), ("HD-2", 1)):
                await session.execute(
                    text(
                        "INSERT INTO bills (id, merchant_id, livemode, customer_id, number, amount, currency,"
                        " amount_rule, metadata, status, amount_paid, created_at, updated_at) VALUES (:id, :m, false,"
                        " :c, :n, :a, 'VND', 'partial', '{}', 'open', 0, :t, :t)"
                    ),
                    {
                        "id": rt.ids.new("bill"),
                        "m": merchant.id,
                        "c": customer_id,
                        "n": number,
                        "a": amount,
                        "t": rt.clock.now(),
                    },
                )
        return found

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(imports.repository, "contents_by_number", lookup_then_race)
    try:
        body = result(await post_json(client, merchant, [bill("HD-1"), bill("HD-2"), bill("HD-3")]))
    finally:
        monkeypatch.undo()
    assert (body["created"], body["unchanged"]) == (1, 1)
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "bill_number_conflict")]
    assert await count(rt, "events") >= 2
    created = await sql(rt, "SELECT count(*) AS n FROM events WHERE type = 'bill.created'")
    assert created[0]["n"] == 2  # HD-0 and HD-3: none for the rows the other import stored


async def test_a_concurrently_created_customer_takes_the_bills_of_its_code(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    """A customer another import created between this import's lookup and its INSERT (on PostgreSQL the COPY then
    fails on the code and the rows go in again skipping it): this import's bills for that code go to that customer,
    and only the customers this import wrote are new."""
    from gateway.bills import imports

    original = imports.customers.ids_by_code_keys
    theirs = rt.ids.new("cus")
    calls = 0

    async def lookup_then_race(session: Any, scope: Any, keys: Any) -> dict[str, str]:
        nonlocal calls
        calls += 1
        found = await original(session, scope, keys)
        if calls == 1:  # the other import commits customer PA01 now
            await session.execute(
                text(
                    "INSERT INTO customers (id, merchant_id, livemode, code, code_key, name, metadata, payment_code,"
                    " balance, currency, created_at, updated_at) VALUES (:id, :m, false, 'PA01', 'PA01', 'Other',"
                    " '{}', 'KHRACE0000000', 0, 'VND', :t, :t)"
                ),
                {"id": theirs, "m": merchant.id, "t": rt.clock.now()},
            )
        return found

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(imports.customers, "ids_by_code_keys", lookup_then_race)
    try:
        body = result(await post_json(client, merchant, [bill("HD-1"), bill("HD-2", customer_code="PA02")]))
    finally:
        monkeypatch.undo()
    assert (body["created"], body["unchanged"], body["errors"]) == (2, 0, [])
    stored = {b["number"]: b for b in await bills_in_db(rt)}
    assert stored["HD-1"]["customer_id"] == theirs
    assert stored["HD-2"]["code"] == "PA02" and stored["HD-2"]["customer_id"] != theirs
    assert await count(rt, "customers") == 2
    events = await sql(rt, "SELECT body FROM events WHERE type = 'bill.created' ORDER BY id")
    customers_named = sorted(orjson.loads(e["body"])["data"]["object"]["customer"] for e in events)
    assert customers_named == sorted([theirs, stored["HD-2"]["customer_id"]])
