"""How a receipt says its amount and its date in Vietnamese: in words (num2words, the maintained library, never
hand-written number words), in figures with Vietnamese digit grouping, and in Vietnam time."""

from __future__ import annotations

from datetime import datetime

from num2words import num2words

from gateway.clock import vietnam_time
from gateway.domain import CURRENCY_EXPONENTS

_CURRENCY_WORDS = {"VND": "đồng"}


def amount_in_words(amount: int, currency: str) -> str:
    """150000 VND → "Một trăm năm mươi nghìn đồng"; an amount with minor units says them as a fraction."""
    exponent = CURRENCY_EXPONENTS.get(currency, 0)
    major, minor = divmod(amount, 10**exponent)
    words = f"{num2words(major, lang='vi')} {_CURRENCY_WORDS.get(currency, currency)}"
    if minor:
        words += f" {minor:0{exponent}d}/{10**exponent}"
    return words[:1].upper() + words[1:]


def amount_in_figures(amount: int, currency: str) -> str:
    """150000 VND → "150.000 đồng" (Vietnamese groups thousands with dots, decimals with a comma)."""
    exponent = CURRENCY_EXPONENTS.get(currency, 0)
    major, minor = divmod(amount, 10**exponent)
    figures = f"{major:,}".replace(",", ".")
    if exponent:
        figures += f",{minor:0{exponent}d}"
    return f"{figures} {_CURRENCY_WORDS.get(currency, currency)}"


def vietnamese_date(moment: datetime) -> str:
    """ "Ngày 22 tháng 11 năm 2026, 17:00 (giờ Việt Nam)": how a receipt is dated."""
    local = vietnam_time(moment)
    return f"Ngày {local.day:02d} tháng {local.month:02d} năm {local.year}, {local:%H:%M} (giờ Việt Nam)"
