from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from starlette.responses import Response

from gateway.api_support import MERCHANT_KEY, PARAMETERS, Limit, StartingAfter, json_response, problems
from gateway.auth import MerchantDep, RuntimeDep
from gateway.clock import isoformat
from gateway.errors import NotFound
from gateway.ledger.models import LedgerEntry, LedgerTransaction
from gateway.ledger.service import merchant_balances
from gateway.refunds.service import ensure_visible
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(tags=["ledger"])


class LedgerEntryObject(BaseModel):
    account: str
    direction: Literal["debit", "credit"]
    amount: int
    currency: str


class LedgerTransactionObject(BaseModel):
    id: str
    object: Literal["ledger_transaction"] = "ledger_transaction"
    kind: str
    payment_id: str | None
    refund_id: str | None
    created_at: str
    entries: list[LedgerEntryObject]


class CurrencyBalanceObject(BaseModel):
    currency: str
    collected: int
    refunded: int
    net: int


class BalanceObject(BaseModel):
    object: Literal["balance"] = "balance"
    balances: list[CurrencyBalanceObject]


@router.get(
    "/v1/ledger/transactions",
    response_model=ListEnvelope[LedgerTransactionObject],
    summary="Ledger transactions, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def list_ledger_transactions(
    rt: RuntimeDep,
    scope: MerchantDep,
    payment_id: Annotated[str | None, Query(max_length=40)] = None,
    refund_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    stmt = select(LedgerTransaction).where(
        LedgerTransaction.merchant_id == scope.merchant_id, LedgerTransaction.livemode == scope.livemode
    )
    if payment_id is not None:
        stmt = stmt.where(LedgerTransaction.payment_id == payment_id)
    if refund_id is not None:
        stmt = stmt.where(LedgerTransaction.refund_id == refund_id)
    if starting_after is not None:
        stmt = stmt.where(LedgerTransaction.id < starting_after)
    async with rt.db.transaction() as session:
        await ensure_visible(session, scope, payment_id=payment_id, refund_id=refund_id)
        rows = list((await session.execute(stmt.order_by(LedgerTransaction.id.desc()).limit(limit + 1))).scalars())
        page = rows[:limit]
        entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if page:
            found = await session.execute(
                select(LedgerEntry).where(LedgerEntry.transaction_id.in_([t.id for t in page])).order_by(LedgerEntry.id)
            )
            for entry in found.scalars():
                entries[entry.transaction_id].append(
                    {
                        "account": entry.account,
                        "direction": entry.direction,
                        "amount": entry.amount,
                        "currency": entry.currency,
                    }
                )
    documents = [
        {
            "id": t.id,
            "object": "ledger_transaction",
            "kind": t.kind,
            "payment_id": t.payment_id,
            "refund_id": t.refund_id,
            "created_at": isoformat(t.created_at),
            "entries": entries[t.id],
        }
        for t in page
    ]
    return json_response(list_document(documents, len(rows) > limit))


@router.get(
    "/v1/balance",
    response_model=BalanceObject,
    summary="Collected, refunded and net, per currency",
    responses=problems(*MERCHANT_KEY),
)
async def get_balance(rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        balances = await merchant_balances(session, scope.merchant_id, scope.livemode)
    return json_response(
        {
            "object": "balance",
            "balances": [
                {"currency": b.currency, "collected": b.collected, "refunded": b.refunded, "net": b.net}
                for b in balances
            ],
        }
    )
