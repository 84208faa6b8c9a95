from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.api_support import MERCHANT_KEY, PARAMETERS, Limit, StartingAfter, json_response, problems
from gateway.auth import MerchantDep, RuntimeDep
from gateway.errors import NotFound
from gateway.ledger import service
from gateway.ledger.schemas import BalanceObject, LedgerTransactionObject
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(tags=["ledger"])


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
    async with rt.db.transaction() as session:
        documents, has_more = await service.list_transactions(
            session,
            scope,
            payment_id=payment_id,
            refund_id=refund_id,
            limit=limit,
            starting_after=starting_after,
        )
    return json_response(list_document(documents, has_more))


@router.get(
    "/v1/balance",
    response_model=BalanceObject,
    summary="Collected, refunded and net, per currency",
    responses=problems(*MERCHANT_KEY),
)
async def get_balance(rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        balances = await service.merchant_balances(session, scope.merchant_id, scope.livemode)
    return json_response(
        {
            "object": "balance",
            "balances": [
                {"currency": b.currency, "collected": b.collected, "refunded": b.refunded, "net": b.net}
                for b in balances
            ],
        }
    )
