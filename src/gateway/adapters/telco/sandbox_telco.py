"""The sandbox telco's books and its calls to the gateway: subscribers' wallets, orders, refunds and pushes, the
verify-order call and the signed result (with a real telco's retries). The payment page, the API, the USSD menu
and the test helpers' payer all pay through `complete`, so every way to pay debits and notifies the same way.

Everything the telco sends is signed, and everything it receives checked, with the wire module's functions and the
profile's encoding; the telco's own codes come from the profile's table, never from a telco's name.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import httpx
import orjson
import structlog

from gateway.adapters.telco import wire
from gateway.adapters.telco.wire import TelcoProfile
from gateway.adapters.testmode import SimulatorContext
from gateway.clock import Clock, vietnam_time
from gateway.masking import mask_number

log = structlog.get_logger("gateway.sandbox.telco")

START_BALANCE = 5_000_000
SANDBOX_PIN = "1234"
MAX_WALLETS = 100_000  # the USSD route is public: a flood of made-up numbers must not grow memory without end
# The telco's own patience with the gateway's verify answer; past it the payer is told the biller is unavailable.
VERIFY_TIMEOUT_SECONDS = 8.0
RESULT_TIMEOUT_SECONDS = 10.0
# A result the gateway did not store (answer 01, no answer, a bad check_sum) is sent again after these pauses.
RESULT_RETRY_BACKOFF_SECONDS: tuple[float, ...] = (2.0, 10.0, 30.0, 120.0)
Fault = Literal["result_twice", "result_lost", "verify_timeout"]
FAULTS: frozenset[str] = frozenset({"result_twice", "result_lost", "verify_timeout"})
CallbackFormat = Literal["form", "json"]
_MSISDN = re.compile(r"^(?:\+?84|0)(\d{9})$")


def msisdn_of(phone: str) -> str | None:
    """0987654321, 84987654321 or +84987654321 → 84987654321 (the telco's own form); None for anything else."""
    match = _MSISDN.match(phone.strip().replace(" ", ""))
    return f"84{match.group(1)}" if match else None


def telco_code(profile: TelcoProfile, failure: str) -> str:
    """The telco's own code for one of the gateway's failure codes (the profile's table read backwards)."""
    if failure == "limit_exceeded":
        return profile.limit_code
    return next((code for code, name in profile.failure_codes.items() if name == failure), "99")


class OrderStatus(StrEnum):
    pending = "pending"
    paid = "paid"
    failed = "failed"


@dataclass
class Wallet:
    msisdn: str
    balance: int = START_BALANCE
    pin: str = SANDBOX_PIN
    spent_by_month: dict[str, int] = field(default_factory=dict)  # "YYYY-MM" (Vietnam time) → debited


@dataclass
class TelcoOrder:
    order_id: str
    billcode: str
    merchant_code: str
    amount: int
    status: OrderStatus = OrderStatus.pending
    error_code: str = ""
    msisdn: str = ""
    vt_transaction_id: str = ""
    refunded: int = 0
    return_url: str = ""
    cancel_url: str = ""
    pin_failures: int = 0
    biller_name: str = ""


@dataclass(frozen=True)
class Verified:
    amount: int
    customer_name: str


class GatewayCallFailed(Exception):
    """The gateway refused the order (`error_code` given), or could not be asked or answered nothing usable
    (`error_code` None): the payer is told the biller is unavailable."""

    def __init__(self, error_code: str | None, reason: str) -> None:
        super().__init__(reason)
        self.error_code = error_code


@dataclass(frozen=True)
class Delivery:
    stored: bool  # the gateway answered 00 with a good check_sum (to the first attempt)
    lost: bool  # the result_lost fault: never sent


@dataclass(frozen=True)
class Biller:
    biller_code: str
    name: str


@dataclass
class SandboxTelco:
    profile: TelcoProfile
    merchant_code: str  # the sandbox account's (gateway-started payments)
    access_code: str
    hash_key: str
    gateway_url: str  # the gateway's /v1/providers/<provider>
    public_base_url: str
    http: httpx.AsyncClient
    clock: Clock
    callback_format: CallbackFormat = "form"
    wallets: OrderedDict[str, Wallet] = field(default_factory=OrderedDict)
    orders: dict[str, TelcoOrder] = field(default_factory=dict)
    refunds: dict[str, dict[str, str]] = field(default_factory=dict)  # the refund's own order_id → its answer
    pushes: dict[str, str] = field(default_factory=dict)  # msisdn → the order a USSD push waits on
    faults: Counter[str] = field(default_factory=Counter)
    retries: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: set[str] = field(default_factory=set)
    _helper_payers: int = 0

    @classmethod
    def from_context(cls, profile: TelcoProfile, ctx: SimulatorContext) -> SandboxTelco:
        format_ = ctx.settings.get("callback_format", "form")
        return cls(
            profile=profile,
            merchant_code=ctx.settings["merchant_code"],
            access_code=ctx.secrets["access_code"],
            hash_key=ctx.secrets["hash_key"],
            gateway_url=ctx.notification_url.rstrip("/").removesuffix("/notifications"),
            public_base_url=ctx.public_base_url.rstrip("/"),
            http=ctx.http,
            clock=ctx.clock,
            callback_format="json" if format_ == "json" else "form",
        )

    @property
    def notification_url(self) -> str:
        return f"{self.gateway_url}/notifications"

    # --- signing, codes, ids -----------------------------------------------------------------------------

    def signed(self, fields: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
        return {
            **fields,
            "check_sum": wire.sign(self.hash_key, self.access_code, fields, names, self.profile.encoding),
        }

    def authentic(self, fields: dict[str, Any], names: tuple[str, ...]) -> bool:
        return wire.check_sum_matches(self.hash_key, self.access_code, fields, names, self.profile.encoding)

    def code(self, failure: str) -> str:
        return telco_code(self.profile, failure)

    @property
    def pending_code(self) -> str:
        return min(self.profile.pending_codes, default="99")

    @property
    def unknown_order_code(self) -> str:
        return min(self.profile.unknown_order_codes, default="99")

    def take_fault(self, fault: Fault) -> bool:
        if self.faults[fault] > 0:
            self.faults[fault] -= 1
            return True
        return False

    def new_id(self, prefix: str, digits: int = 10) -> str:
        """A fresh id (random: unique across sandbox restarts too, as the gateway stores them)."""
        while True:
            candidate = f"{prefix}{secrets.randbelow(10**digits):0{digits}d}"
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def new_transaction_id(self) -> str:
        return self.new_id(self.profile.transaction_prefix)

    # --- wallets -----------------------------------------------------------------------------------------

    def wallet(self, msisdn: str) -> Wallet:
        wallet = self.wallets.get(msisdn)
        if wallet is None:
            wallet = self.wallets[msisdn] = Wallet(msisdn)
            while len(self.wallets) > MAX_WALLETS:
                self.wallets.popitem(last=False)
        return wallet

    def helper_payer(self, amount: int) -> str:
        """A fresh subscriber for the test helpers' payer, able to afford the order (the limit still applies)."""
        self._helper_payers += 1
        msisdn = f"8490{self._helper_payers:07d}"
        self.wallet(msisdn).balance = max(START_BALANCE, amount)
        return msisdn

    def _month(self) -> str:
        return vietnam_time(self.clock.now()).strftime("%Y-%m")

    def spent_this_month(self, msisdn: str) -> int:
        return self.wallet(msisdn).spent_by_month.get(self._month(), 0)

    # --- orders ------------------------------------------------------------------------------------------

    def open_order(
        self,
        order_id: str,
        billcode: str,
        merchant_code: str,
        amount: int,
        *,
        return_url: str = "",
        cancel_url: str = "",
        msisdn: str = "",
    ) -> TelcoOrder:
        """The order `order_id` (a gateway-started one opens when its page, push or payer first names it)."""
        order = self.orders.get(order_id)
        if order is None:
            order = self.orders[order_id] = TelcoOrder(
                order_id, billcode, merchant_code, amount, return_url=return_url, cancel_url=cancel_url, msisdn=msisdn
            )
        return order

    def charge(self, order: TelcoOrder, msisdn: str) -> str:
        """Take the money (the PIN already checked): the telco's code for what happened."""
        wallet = self.wallet(msisdn)
        order.msisdn = msisdn
        month = self._month()
        if wallet.balance < order.amount:
            return self.close(order, self.code("insufficient_funds"))
        if wallet.spent_by_month.get(month, 0) + order.amount > wire.MONTHLY_LIMIT:
            return self.close(order, self.profile.limit_code)
        wallet.balance -= order.amount
        wallet.spent_by_month[month] = wallet.spent_by_month.get(month, 0) + order.amount
        return self.close(order, wire.SUCCESS)

    def close(self, order: TelcoOrder, code: str, msisdn: str | None = None) -> str:
        order.status = OrderStatus.paid if code == wire.SUCCESS else OrderStatus.failed
        order.error_code = code
        if msisdn is not None:
            order.msisdn = msisdn
        order.vt_transaction_id = order.vt_transaction_id or self.new_transaction_id()
        self.pushes = {phone: oid for phone, oid in self.pushes.items() if oid != order.order_id}
        log.info(
            "sandbox_telco.order_closed",
            provider=self.profile.provider,
            order_id=order.order_id,
            error_code=code,
            msisdn=mask_number(order.msisdn),
        )
        return code

    async def complete(self, order: TelcoOrder, msisdn: str) -> tuple[str, Delivery]:
        code = self.charge(order, msisdn)
        return code, await self.deliver_result(order)

    async def fail(self, order: TelcoOrder, code: str, msisdn: str = "") -> Delivery:
        self.close(order, code, msisdn or order.msisdn)
        return await self.deliver_result(order)

    # --- the gateway's verify-order ----------------------------------------------------------------------

    async def verify(self, order: TelcoOrder, *, with_amount: bool) -> Verified:
        """Ask the gateway whether the order is open; a gateway-started one is verified with its amount."""
        fields = {"billcode": order.billcode, "merchant_code": order.merchant_code, "order_id": order.order_id}
        if with_amount:
            fields["trans_amount"] = str(order.amount)
        body = self.signed(fields, wire.VERIFY_SIGNED)
        try:
            async with asyncio.timeout(VERIFY_TIMEOUT_SECONDS):
                response = await self._post(f"{self.gateway_url}/verify", body, VERIFY_TIMEOUT_SECONDS)
                if self.take_fault("verify_timeout"):  # the gateway's answer arrives after the telco gave up
                    await asyncio.sleep(VERIFY_TIMEOUT_SECONDS * 2)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.warning("sandbox_telco.verify_failed", provider=self.profile.provider, error=type(exc).__name__)
            raise GatewayCallFailed(None, f"verify failed: {type(exc).__name__}") from exc
        answer = _json_object(response)
        if response.status_code != 200 or answer is None:
            raise GatewayCallFailed(None, f"verify answered HTTP {response.status_code}")
        error_code = str(answer.get("error_code", ""))
        if error_code != wire.VERIFY_OPEN:
            raise GatewayCallFailed(error_code, f"verify answered {error_code or 'no error_code'}")
        if not self.authentic(answer, wire.VERIFY_ANSWER_SIGNED) or str(answer.get("order_id")) != order.order_id:
            raise GatewayCallFailed(None, "verify answer not authentic")
        amount = _amount(answer.get("trans_amount"))
        if amount is None:
            raise GatewayCallFailed(None, "verify answer without a positive trans_amount")
        name = answer.get("customer_name")
        return Verified(order.amount if with_amount else amount, name if isinstance(name, str) else "")

    async def billers(self) -> list[Biller]:
        """The gateway's billers (the merchants with a biller_code), for the USSD menu."""
        query = self.signed({"cmd": wire.BILLERS_COMMAND, "version": wire.VERSION}, wire.BILLERS_SIGNED)
        try:
            async with asyncio.timeout(VERIFY_TIMEOUT_SECONDS):
                response = await self.http.get(f"{self.gateway_url}/billers", params=query)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise GatewayCallFailed(None, f"billers failed: {type(exc).__name__}") from exc
        answer = _json_object(response)
        if response.status_code != 200 or answer is None or not isinstance(answer.get("billers"), list):
            raise GatewayCallFailed(None, f"billers answered HTTP {response.status_code}")
        return [
            Biller(str(b["biller_code"]), str(b.get("name") or b["biller_code"]))
            for b in answer["billers"]
            if isinstance(b, dict) and b.get("biller_code")
        ]

    # --- the result --------------------------------------------------------------------------------------

    def result_fields(self, order: TelcoOrder) -> dict[str, str]:
        paid = order.status is OrderStatus.paid
        fields = {
            "billcode": order.billcode,
            "cust_msisdn": order.msisdn,
            "error_code": order.error_code,
            "merchant_code": order.merchant_code,
            "order_id": order.order_id,
            "payment_status": wire.PAID if paid else wire.NOT_PAID,
            "trans_amount": str(order.amount),
            "vt_transaction_id": order.vt_transaction_id,
        }
        return self.signed(fields, wire.RESULT_SIGNED)

    async def deliver_result(self, order: TelcoOrder) -> Delivery:
        """POST the signed result; one the gateway did not store is sent again later, in the background."""
        if self.take_fault("result_lost"):
            log.info("sandbox_telco.result_lost", provider=self.profile.provider, order_id=order.order_id)
            return Delivery(stored=False, lost=True)
        fields = self.result_fields(order)
        stored = await self._send_result(fields)
        if self.take_fault("result_twice"):
            stored = await self._send_result(fields) or stored
        if not stored:
            task = asyncio.create_task(self._retry_result(fields))
            self.retries.add(task)
            task.add_done_callback(self.retries.discard)
        return Delivery(stored=stored, lost=False)

    async def settle_retries(self) -> None:
        """Wait for the results still being retried (tests; a shutdown)."""
        while self.retries:
            await asyncio.gather(*self.retries, return_exceptions=True)

    async def _retry_result(self, fields: dict[str, str]) -> None:
        for pause in RESULT_RETRY_BACKOFF_SECONDS:
            await asyncio.sleep(pause)
            if await self._send_result(fields):
                return
        log.warning("sandbox_telco.result_abandoned", provider=self.profile.provider, order_id=fields["order_id"])

    async def _send_result(self, fields: dict[str, str]) -> bool:
        try:
            response = await self._post(self.notification_url, fields, RESULT_TIMEOUT_SECONDS)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.warning("sandbox_telco.result_failed", provider=self.profile.provider, error=type(exc).__name__)
            return False
        answer = _json_object(response)
        if response.status_code != 200 or answer is None or answer.get("error_code") != wire.RESULT_STORED:
            return False
        if not self.authentic(answer, wire.RESULT_ANSWER_SIGNED):
            log.warning("sandbox_telco.result_answer_not_authentic", order_id=fields["order_id"])
            return False
        return True

    async def _post(self, url: str, fields: dict[str, str], seconds: float) -> httpx.Response:
        # Bounded as a whole: an in-process ASGI transport (the mounted sandbox) enforces no httpx timeout.
        async with asyncio.timeout(seconds):
            if self.callback_format == "json":
                return await self.http.post(url, json=fields, timeout=seconds)
            return await self.http.post(url, data=fields, timeout=seconds)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _amount(value: object) -> int | None:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and int(text) > 0 else None
