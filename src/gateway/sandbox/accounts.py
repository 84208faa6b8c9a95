"""The simulators' side of test mode: one shared account per provider and secrets derived from the
gateway's master secret, so the gateway and a simulator started with the same GATEWAY_SECRET_KEY agree."""

from __future__ import annotations

from gateway.adapters.base import ProviderCredentials
from gateway.crypto import SecretBox

SANDBOX_SETTINGS: dict[str, dict[str, str]] = {
    "vietqr": {
        "bank_bin": "970436",
        "account_number": "0011223344",
        "account_name": "CONG THANH TOAN SANDBOX",
    },
    "vnpay": {"tmn_code": "GWSANDBX"},
    "momo": {"partner_code": "MOMOGWSANDBOX"},
}
# The names of each provider's secrets; their values derive from the gateway's master secret.
SANDBOX_SECRET_NAMES: dict[str, tuple[str, ...]] = {
    "vietqr": ("webhook_secret", "api_key"),
    "vnpay": ("hash_secret",),
    "momo": ("access_key", "secret_key"),
}


def sandbox_secrets(secret_box: SecretBox, provider: str) -> dict[str, str]:
    return {name: secret_box.derive_token(f"sandbox:{provider}:{name}") for name in SANDBOX_SECRET_NAMES[provider]}


def sandbox_credentials(secret_box: SecretBox, sandbox_base_url: str, provider: str) -> ProviderCredentials | None:
    settings = SANDBOX_SETTINGS.get(provider)
    if settings is None:
        return None
    return ProviderCredentials(
        livemode=False,
        merchant_id=None,
        settings=settings,
        secrets=sandbox_secrets(secret_box, provider),
        base_url=f"{sandbox_base_url.rstrip('/')}/{provider}",
    )
