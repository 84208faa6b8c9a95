"""`gateway phone`: a feature phone in a terminal, dialling a sandbox telco's USSD menu.

Each screen is printed in a simple frame; each line read is one input, and every request carries all inputs so far
joined by `*`, as a USSD gateway sends them. When the input is a pipe, what is read is echoed after the prompt so a
transcript reads as the session went.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx


def frame(screen: str) -> str:
    lines = screen.split("\n")
    width = max(20, *(len(line) for line in lines))
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


async def play_phone(
    http: httpx.AsyncClient,
    ussd_url: str,
    phone: str,
    service_code: str,
    read_line: Callable[[], str | None],
    write: Callable[[str], None],
) -> int:
    """Play the session to its END: 0, or 1 when the telco cannot be reached or answers an HTTP error."""
    session_id = uuid.uuid4().hex
    inputs: list[str] = []
    while True:
        body = {"session_id": session_id, "service_code": service_code, "phone": phone, "text": "*".join(inputs)}
        try:
            response = await http.post(ussd_url, json=body)
        except httpx.HTTPError as exc:
            write(f"error: the telco cannot be reached at {ussd_url} ({type(exc).__name__})")
            return 1
        if response.status_code != 200:
            write(f"error: HTTP {response.status_code} from {ussd_url}: {response.text[:200]}")
            return 1
        kind, _, screen = response.text.partition(" ")
        write(frame(screen))
        if kind == "END":
            return 0
        if kind != "CON":
            write("error: the answer is not a USSD screen (CON or END)")
            return 1
        line = read_line()
        if line is None:
            write("error: the input ended before the session did")
            return 1
        inputs.append(line)
