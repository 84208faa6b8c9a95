from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


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
