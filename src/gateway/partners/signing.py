"""How a partner signs its requests (§12), for the gateway that checks them and for the partners it simulates.

`X-Signature` is the hex HMAC-SHA256 of `"{timestamp}.{METHOD}.{path}.{body}"` keyed by the whole `psk_...` secret
(UTF-8); `path` without the query, `body` the exact bytes sent. A timestamp more than 300 s from the gateway's
clock is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_TOLERANCE_SECONDS = 300
PARTNER_ID_HEADER = "x-partner-id"
TIMESTAMP_HEADER = "x-timestamp"
SIGNATURE_HEADER = "x-signature"


def sign_request(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(partner_id: str, secret: str, timestamp: int, method: str, path: str, body: bytes) -> dict[str, str]:
    """The three headers of a partner request (what `gateway partner-sim` and the tests send)."""
    stamp = str(timestamp)
    return {
        "X-Partner-Id": partner_id,
        "X-Timestamp": stamp,
        "X-Signature": sign_request(secret, stamp, method, path, body),
    }


def signature_matches(
    secrets: Iterable[str], signature: str, timestamp: str, method: str, path: str, body: bytes
) -> bool:
    """Whether any of `secrets` (the current one, and the previous one during a rotation) signed it; every candidate
    is compared in constant time."""
    given = signature.strip().lower().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign_request(secret, timestamp, method, path, body).encode(), given)
    return matched


def timestamp_fresh(timestamp: str, now_seconds: float) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(int(timestamp) - now_seconds) <= SIGNATURE_TOLERANCE_SECONDS
