"""The sandbox telco's merchant API (`POST {profile.api_path}`, form-encoded, by `cmd`): the status query, the
refund and the USSD push, each answered as signed JSON (wire.py's modelled answers).

A request whose check_sum does not match changes nothing and is answered with the profile's bad-check_sum code.
Requests signed with the sandbox's keys are accepted whatever merchant_code they name: in test mode a biller is
known to the telco by its biller_code, and every biller shares the sandbox account's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.adapters.telco import wire
from gateway.adapters.telco.sandbox_telco import OrderStatus, SandboxTelco, msisdn_of

Answer = dict[str, str]


def answer_command(telco: SandboxTelco, fields: dict[str, Any]) -> Answer:
    commands: dict[str, Callable[[SandboxTelco, dict[str, Any]], Answer]] = {
        wire.INQUIRY_COMMAND: inquire,
        wire.REFUND_COMMAND: refund,
        wire.PUSH_COMMAND: push,
    }
    command = commands.get(str(fields.get("cmd", "")))
    if command is None:
        return _answer(telco, fields, wire.PUSH_ANSWER_SIGNED, telco.code("declined"))
    return command(telco, fields)


def _answer(
    telco: SandboxTelco, request: dict[str, Any], names: tuple[str, ...], error_code: str, **fields: str
) -> Answer:
    base = {
        "error_code": error_code,
        "merchant_code": str(request.get("merchant_code", "")),
        "order_id": str(request.get("order_id", "")),
    }
    return telco.signed({**base, **fields}, names)


def _positive_amount(value: object) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def inquire(telco: SandboxTelco, fields: dict[str, Any]) -> Answer:
    names = wire.INQUIRY_ANSWER_SIGNED
    if not telco.authentic(fields, wire.INQUIRY_SIGNED):
        return _answer(telco, fields, names, telco.code("invalid_signature"))
    order = telco.orders.get(str(fields.get("order_id", "")))
    if order is None:
        return _answer(telco, fields, names, telco.unknown_order_code)
    paid = order.status is OrderStatus.paid
    return _answer(
        telco,
        fields,
        names,
        telco.pending_code if order.status is OrderStatus.pending else order.error_code,
        payment_status=wire.PAID if paid else wire.NOT_PAID,
        trans_amount=str(order.amount),
        vt_transaction_id=order.vt_transaction_id,
    )


def refund(telco: SandboxTelco, fields: dict[str, Any]) -> Answer:
    """originalRequestId names the paid order; order_id is the refund's own id (a repeat answers the same)."""
    names = wire.REFUND_ANSWER_SIGNED
    if not telco.authentic(fields, wire.REFUND_SIGNED):
        return _answer(telco, fields, names, telco.code("invalid_signature"), refund_transaction_id="")
    refund_id = str(fields.get("order_id", ""))
    previous = telco.refunds.get(refund_id)
    if previous is not None:
        return previous
    original = telco.orders.get(str(fields.get("originalRequestId", "")))
    if original is None or original.status is not OrderStatus.paid or not refund_id:
        return _answer(telco, fields, names, telco.unknown_order_code, refund_transaction_id="")
    amount = _positive_amount(fields.get("trans_amount"))
    refund_type = str(fields.get("refundType", ""))
    remaining = original.amount - original.refunded
    allowed = amount is not None and (
        (refund_type == "0" and original.refunded == 0 and amount == original.amount)
        or (refund_type == "1" and amount <= remaining)
    )
    if not allowed or amount is None:
        return _answer(telco, fields, names, telco.code("declined"), refund_transaction_id="")
    original.refunded += amount
    telco.wallet(original.msisdn).balance += amount
    answer = _answer(telco, fields, names, wire.SUCCESS, refund_transaction_id=telco.new_transaction_id())
    telco.refunds[refund_id] = answer
    return answer


def push(telco: SandboxTelco, fields: dict[str, Any]) -> Answer:
    """Queue a PIN prompt for the phone: shown when the subscriber's next USSD session starts."""
    names = wire.PUSH_ANSWER_SIGNED
    if not telco.authentic(fields, wire.PUSH_SIGNED):
        return _answer(telco, fields, names, telco.code("invalid_signature"))
    msisdn = msisdn_of(str(fields.get("msisdn", "")))
    amount = _positive_amount(fields.get("trans_amount"))
    order_id, billcode = str(fields.get("order_id", "")), str(fields.get("billcode", ""))
    known = telco.orders.get(order_id)
    if (
        msisdn is None
        or amount is None
        or not order_id
        or not billcode
        or (known is not None and known.status is not OrderStatus.pending)
    ):
        return _answer(telco, fields, names, telco.code("declined"))
    order = telco.open_order(order_id, billcode, str(fields.get("merchant_code", "")), amount, msisdn=msisdn)
    order.msisdn = msisdn
    telco.pushes[msisdn] = order.order_id
    return _answer(telco, fields, names, wire.SUCCESS)
