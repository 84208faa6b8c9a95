"""Customers and bills written straight to the database, so allocation is tested apart from their API."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from gateway.bills.allocation import apply_balance
from gateway.bills.models import Bill
from gateway.customers.models import Customer
from gateway.customers.service import new_payment_code
from gateway.domain import AmountRule, BillStatus
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, sql


async def make_customer(
    rt: Runtime,
    merchant: MerchantHandle,
    code: str = "PA01000123456",
    name: str = "Nguyễn Văn An",
    *,
    livemode: bool = False,
) -> str:
    now = rt.clock.now()
    customer_id = rt.ids.new("cus")
    async with rt.db.transaction() as session:
        session.add(
            Customer(
                id=customer_id,
                merchant_id=merchant.id,
                livemode=livemode,
                code=code,
                code_key=code.upper(),
                name=name,
                metadata_={},
                payment_code=new_payment_code(rt, customer_id),
                balance=0,
                currency="VND",
                created_at=now,
                updated_at=now,
            )
        )
    return customer_id


async def make_bill(
    rt: Runtime,
    merchant: MerchantHandle,
    customer_id: str,
    number: str,
    amount: int,
    due: date | None = None,
    rule: AmountRule = AmountRule.partial,
) -> str:
    now = rt.clock.now()
    bill = Bill(
        id=rt.ids.new("bill"),
        merchant_id=merchant.id,
        livemode=False,
        customer_id=customer_id,
        number=number,
        amount=amount,
        currency="VND",
        due_date=due,
        amount_rule=rule,
        metadata_={},
        status=BillStatus.open,
        amount_paid=0,
        created_at=now,
        updated_at=now,
    )
    async with rt.db.transaction() as session:
        session.add(bill)
        await session.flush()
        await apply_balance(session, rt, customer_id, [bill])
    return bill.id


async def bill_row(rt: Runtime, bill_id: str) -> dict[str, Any]:
    (row,) = await sql(rt, "SELECT status, amount_paid FROM bills WHERE id = :id", id=bill_id)
    return row


async def balance_of(rt: Runtime, customer_id: str) -> int:
    (row,) = await sql(rt, "SELECT balance FROM customers WHERE id = :id", id=customer_id)
    return int(row["balance"])


async def execute(rt: Runtime, statement: str, **params: Any) -> None:
    async with rt.db.transaction() as session:
        await session.execute(text(statement), params)
