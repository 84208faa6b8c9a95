from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MerchantScope:
    """Whose objects a request may see: one merchant, in one mode (test keys never see live objects)."""

    merchant_id: str
    livemode: bool
    key_id: str | None = None

    @property
    def idempotency_scope(self) -> str:
        return f"{self.merchant_id}/{'live' if self.livemode else 'test'}"
