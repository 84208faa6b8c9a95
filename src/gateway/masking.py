"""Masks for personal data shown to people who need only to tell two customers apart: operators reading logs, a
collector reading an inquiry, a citizen checking a receipt."""

from __future__ import annotations

import re

# Six or more digits in a row, or digits in groups however a person spaced them ("0912 345 678", "0912.345.678",
# "+84-912-345-678") — but not an ISO date.
_DIGIT_RUN = re.compile(r"(?<![\w+])(?!\d{4}-\d\d-\d\d)\+?(?:\d{6,}|\d{1,4}(?:[ .\-]\d{1,4}){2,})(?!\w)")
_GROUPED_PHONE_DIGITS = 9  # a grouped run shorter than this is a date, a time or an amount
# A name, account or phone carried as a key/value pair inside free text (a traceback, a repr, a JSON fragment).
_PAIR = re.compile(
    r"""(?P<key>["']?\b\w*(?:name|phone|msisdn|account|card|pan|email)\w*\b["']?\s*[:=]\s*)(?P<quote>["'])(?P<value>.*?)(?P=quote)""",
    re.I,
)


def mask_number(value: str) -> str:
    """Keep the last 4 digits: enough for an operator to tell two customers apart."""
    digits = re.sub(r"\D", "", value) or value
    return "*" * max(len(digits) - 4, 0) + digits[-4:] if len(digits) > 4 else "****"


def mask_name(value: str) -> str:
    """NGUYEN VAN A → NGUYEN V** A: the family name and the given name stay, the middle names go."""
    words = value.split()
    if not words:
        return value
    if len(words) == 1:
        return words[0][:1] + "**"
    return " ".join([words[0], *(w[:1] + "**" for w in words[1:-1]), words[-1]])


def mask_free_text(text: str) -> str:
    """Free text may carry a phone or account number the payer typed, or a name inside a quoted record."""
    text = _PAIR.sub(lambda m: f"{m['key']}{m['quote']}{_mask_value(m['key'], m['value'])}{m['quote']}", text)
    return _DIGIT_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if not run.lstrip("+").isdigit() and sum(ch.isdigit() for ch in run) < _GROUPED_PHONE_DIGITS:
        return run
    return mask_number(run)


def _mask_value(key: str, value: str) -> str:
    return mask_name(value) if "name" in key.lower() else mask_number(value)
