"""Electronic receipts (§14). The payments and refunds services call these hooks in the paying transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.payments.models import Payment
from gateway.runtime import Runtime


async def issue_for_payment(session: AsyncSession, rt: Runtime, payment: Payment) -> None:
    """The payment just succeeded: issue its one receipt when the merchant issues receipts."""


async def after_refund(session: AsyncSession, rt: Runtime, payment: Payment) -> None:
    """A refund of the payment just succeeded (payment.amount_refunded includes it): cancel its receipt, or
    replace it with one for what remains."""
