"""The sandbox telco's USSD menu: what a feature phone shows after dialling the telco's service code.

A session is a series of requests whose `text` is every input so far joined by `*`; each answer is one screen,
`CON ` (wait for input) or `END ` (close), at most 182 characters. The menu pays a bill (choose the biller from
the gateway's list, nine options to a screen — eight billers and `9` for more —, type the customer or bill code,
the telco verifies it with the gateway, confirm, PIN) or, when the gateway pushed a payment to the phone, shows
that first and asks for the PIN. Screens are Vietnamese without diacritics, as a feature phone's GSM alphabet has.

Sessions live in memory, bounded: idle ones expire, and past the cap the oldest goes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from anyascii import anyascii

from gateway.adapters.telco import wire
from gateway.adapters.telco.sandbox_telco import (
    Biller,
    GatewayCallFailed,
    OrderStatus,
    SandboxTelco,
    TelcoOrder,
    msisdn_of,
)
from gateway.masking import mask_name

SCREEN_MAX = 182
MAX_INPUT = 40
MAX_PIN_ATTEMPTS = 3
SESSION_IDLE_SECONDS = 180
MAX_SESSIONS = 1000
PAGE_SIZE = 8  # billers per screen: with `9` for more, nine options
MORE, BACK = "9", "0"
_CODE = re.compile(r"^[A-Za-z0-9._/-]+$")

INVALID_CHOICE = "Lua chon sai."
NOTHING_TYPED = "Ban chua nhap gi."
TOO_LONG = f"Toi da {MAX_INPUT} ky tu."
BILLERS_TITLE = "Chon don vi:"
BUSY = "He thong dang ban, vui long thu lai sau."


class Step(StrEnum):
    main = "main"
    billers = "billers"
    code = "code"
    confirm = "confirm"
    pin = "pin"


@dataclass(frozen=True)
class Reply:
    text: str
    ended: bool = False

    def render(self) -> str:
        return fit(("END " if self.ended else "CON ") + gsm_text(self.text))


def gsm_text(text: str) -> str:
    """A feature phone's USSD screen is GSM 7-bit: Vietnamese is shown without its diacritics, as telcos send it
    (`Nước sạch` → `Nuoc sach`), line by line."""
    return "\n".join(anyascii(line) for line in text.split("\n"))


def fit(screen: str) -> str:
    """At most SCREEN_MAX characters: drop the lines under the first (a title or an error) until it fits."""
    lines = screen.split("\n")
    while len("\n".join(lines)) > SCREEN_MAX and len(lines) > 2:
        del lines[1]
    text = "\n".join(lines)
    return text if len(text) <= SCREEN_MAX else text[: SCREEN_MAX - 3] + "..."


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " VND"


def _shortened(names: list[str], width: int) -> list[str]:
    """Names cut to `width`; when cutting the ends would make two alike, keep each one's beginning and end."""
    cut = [n if len(n) <= width else n[: width - 2] + ".." for n in names]
    if len(set(cut)) == len(set(names)):
        return cut
    head, tail = width // 2 - 1, width - width // 2 - 1
    return [n if len(n) <= width else f"{n[:head]}..{n[-tail:]}" for n in names]


@dataclass
class UssdSession:
    session_id: str
    msisdn: str
    last_seen: datetime
    step: Step = Step.main
    consumed: int = 0  # how many of `text`'s inputs have been answered
    screen: str = ""  # the screen waiting for input (repeated, under an error, after a bad one)
    billers: list[Biller] = field(default_factory=list)
    page: int = 0
    biller: Biller | None = None
    order: TelcoOrder | None = None
    pushed: bool = False  # the order came from the gateway's USSD push
    pin_attempts: int = 0


class UssdMenu:
    def __init__(self, telco: SandboxTelco) -> None:
        self.telco = telco
        self.sessions: OrderedDict[str, UssdSession] = OrderedDict()

    async def answer(self, session_id: str, service_code: str, phone: str, text: str) -> str:
        self._expire()
        if service_code.strip() != self.telco.profile.ussd_service_code:
            return Reply("Ma dich vu khong ton tai.", ended=True).render()
        msisdn = msisdn_of(phone)
        if msisdn is None:
            return Reply("So dien thoai khong hop le.", ended=True).render()
        inputs = text.split("*") if text else []
        session = self.sessions.get(session_id)
        if session is None:
            if inputs:  # an ended or expired session
                return Reply("Phien da ket thuc. Vui long quay so lai.", ended=True).render()
            session = self._open(session_id, msisdn)
            return (await self._start(session)).render()
        if session.msisdn != msisdn:
            return Reply("Phien khong hop le.", ended=True).render()
        session.last_seen = self.telco.clock.now()
        self.sessions.move_to_end(session_id)
        fresh = inputs[session.consumed :]
        session.consumed = max(session.consumed, len(inputs))
        reply = Reply(session.screen)  # a repeated request sees its screen again
        for value in fresh:
            reply = await self._step(session, value.strip())
            if reply.ended:
                self.sessions.pop(session_id, None)
                break
        return reply.render()

    # --- sessions ----------------------------------------------------------------------------------------

    def _open(self, session_id: str, msisdn: str) -> UssdSession:
        session = UssdSession(session_id, msisdn, self.telco.clock.now())
        self.sessions[session_id] = session
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return session

    def _expire(self) -> None:
        horizon = self.telco.clock.now() - timedelta(seconds=SESSION_IDLE_SECONDS)
        while self.sessions:
            oldest = next(iter(self.sessions.values()))
            if oldest.last_seen >= horizon:
                break
            self.sessions.popitem(last=False)

    @staticmethod
    def _show(session: UssdSession, step: Step, screen: str) -> Reply:
        session.step, session.screen = step, screen
        return Reply(screen)

    @staticmethod
    def _again(session: UssdSession, error: str) -> Reply:
        return Reply(f"{error}\n{session.screen}")

    # --- the menu ----------------------------------------------------------------------------------------

    async def _start(self, session: UssdSession) -> Reply:
        pushed = self.telco.orders.get(self.telco.pushes.get(session.msisdn, ""))
        if pushed is not None and pushed.status is OrderStatus.pending:
            session.order, session.pushed = pushed, True
            biller = await self._biller_name(pushed.merchant_code)
            return self._show(
                session,
                Step.pin,
                f"{biller[:40]} yeu cau thanh toan {vnd(pushed.amount)} (ma {pushed.billcode[:40]}).\n"
                "Nhap ma PIN de xac nhan, 0 de tu choi:",
            )
        return self._main(session)

    def _main(self, session: UssdSession) -> Reply:
        return self._show(
            session, Step.main, f"{self.telco.profile.display_name}\n1 Thanh toan hoa don\n2 So du tai khoan"
        )

    async def _step(self, session: UssdSession, value: str) -> Reply:
        if not value:
            return self._again(session, NOTHING_TYPED)
        if len(value) > MAX_INPUT:
            return self._again(session, TOO_LONG)
        if session.step is Step.main:
            return await self._on_main(session, value)
        if session.step is Step.billers:
            return self._on_biller(session, value)
        if session.step is Step.code:
            return await self._on_code(session, value)
        if session.step is Step.confirm:
            return await self._on_confirm(session, value)
        return await self._on_pin(session, value)

    async def _on_main(self, session: UssdSession, value: str) -> Reply:
        if value == "2":
            wallet = self.telco.wallet(session.msisdn)
            spent = self.telco.spent_this_month(session.msisdn)
            return Reply(
                f"So du: {vnd(wallet.balance)}.\nDa thanh toan thang nay: {vnd(spent)} / {vnd(wire.MONTHLY_LIMIT)}.",
                ended=True,
            )
        if value != "1":
            return self._again(session, INVALID_CHOICE)
        try:
            session.billers = await self.telco.billers()
        except GatewayCallFailed:
            return Reply(BUSY, ended=True)
        if not session.billers:
            return Reply("Chua co don vi nao nhan thanh toan.", ended=True)
        return self._biller_page(session, 0)

    def _biller_page(self, session: UssdSession, page: int) -> Reply:
        session.page = page
        items = session.billers[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        more = len(session.billers) > (page + 1) * PAGE_SIZE
        footer = ([f"{MORE} Xem them"] if more else []) + [f"{BACK} Tro ve"]
        # Names are shortened until the screen fits even when a repeat's error line takes the title's place.
        longest_error = max(len(e) for e in (INVALID_CHOICE, NOTHING_TYPED, TOO_LONG))
        budget = SCREEN_MAX - len("CON ") - max(0, longest_error - len(BILLERS_TITLE))
        for width in range(24, 5, -1):
            names = _shortened([b.name for b in items], width)
            lines = [BILLERS_TITLE, *(f"{i} {name}" for i, name in enumerate(names, 1)), *footer]
            if len("\n".join(lines)) <= budget:
                break
        return self._show(session, Step.billers, "\n".join(lines))

    def _on_biller(self, session: UssdSession, value: str) -> Reply:
        items = session.billers[session.page * PAGE_SIZE : (session.page + 1) * PAGE_SIZE]
        more = len(session.billers) > (session.page + 1) * PAGE_SIZE
        if value == MORE and more:
            return self._biller_page(session, session.page + 1)
        if value == BACK:
            return self._biller_page(session, session.page - 1) if session.page > 0 else self._main(session)
        if value.isdigit() and 1 <= int(value) <= len(items):
            session.biller = items[int(value) - 1]
            return self._show(session, Step.code, f"{session.biller.name[:60]}\nNhap ma khach hang hoac ma hoa don:")
        return self._again(session, INVALID_CHOICE)

    async def _on_code(self, session: UssdSession, value: str) -> Reply:
        if not _CODE.match(value) or session.biller is None:
            return self._again(session, "Ma khong hop le.")
        order = self.telco.open_order(
            self.telco.new_id("USSD", 12), value, session.biller.biller_code, 0, msisdn=session.msisdn
        )
        order.biller_name = session.biller.name
        try:
            verified = await self.telco.verify(order, with_amount=False)
        except GatewayCallFailed as exc:
            del self.telco.orders[order.order_id]  # no money moved, no result: the order never existed
            if exc.error_code is None:
                return Reply(BUSY, ended=True)
            return Reply(f"Khong tim thay hoa don can thanh toan voi ma {value}.", ended=True)
        order.amount = verified.amount
        session.order = order
        name = mask_name(verified.customer_name) if verified.customer_name else "-"
        return self._show(
            session,
            Step.confirm,
            f"{session.biller.name[:30]}\nKhach hang: {name[:40]}\nMa: {value}\nSo tien: {vnd(order.amount)}"
            "\n1 Xac nhan\n2 Huy",
        )

    async def _on_confirm(self, session: UssdSession, value: str) -> Reply:
        assert session.order is not None
        if value == "2":
            await self.telco.fail(session.order, self.telco.code("payer_canceled"), session.msisdn)
            return Reply("Ban da huy giao dich.", ended=True)
        if value != "1":
            return self._again(session, INVALID_CHOICE)
        return self._show(session, Step.pin, f"Nhap ma PIN de thanh toan {vnd(session.order.amount)}:")

    async def _on_pin(self, session: UssdSession, value: str) -> Reply:
        order = session.order
        assert order is not None
        if order.status is not OrderStatus.pending:
            return Reply("Giao dich da ket thuc.", ended=True)
        if session.pushed and value == "0":
            await self.telco.fail(order, self.telco.code("payer_canceled"), session.msisdn)
            return Reply("Ban da tu choi thanh toan.", ended=True)
        wallet = self.telco.wallet(session.msisdn)
        if value != wallet.pin:
            session.pin_attempts += 1
            left = MAX_PIN_ATTEMPTS - session.pin_attempts
            if left > 0:
                return self._again(session, f"Sai ma PIN, con {left} lan thu.")
            await self.telco.fail(order, self.telco.code("wrong_pin"), session.msisdn)
            return Reply(f"Sai ma PIN {MAX_PIN_ATTEMPTS} lan. Giao dich da bi huy.", ended=True)
        if session.pushed:  # a gateway-started order is verified with its amount once the payer agrees
            try:
                await self.telco.verify(order, with_amount=True)
            except GatewayCallFailed as exc:
                return Reply(BUSY if exc.error_code is None else "Don vi tu choi giao dich.", ended=True)
        code, _delivery = await self.telco.complete(order, session.msisdn)
        balance = vnd(wallet.balance)
        if code == wire.SUCCESS:
            biller = order.biller_name or await self._biller_name(order.merchant_code)
            return Reply(
                f"Thanh toan thanh cong {vnd(order.amount)} cho {biller[:40]}.\n"
                f"Ma GD: {order.vt_transaction_id}\nSo du: {balance}",
                ended=True,
            )
        if code == self.telco.profile.limit_code:
            spent = vnd(self.telco.spent_this_month(session.msisdn))
            return Reply(f"Vuot han muc {vnd(wire.MONTHLY_LIMIT)}/thang. Da thanh toan thang nay: {spent}.", ended=True)
        return Reply(f"So du khong du de thanh toan {vnd(order.amount)}. So du: {balance}.", ended=True)

    async def _biller_name(self, merchant_code: str) -> str:
        try:
            billers = await self.telco.billers()
        except GatewayCallFailed:
            billers = []
        return next((b.name for b in billers if b.biller_code == merchant_code), merchant_code)
