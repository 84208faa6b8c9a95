"""Finds adapters: the built-in ones plus any installed package exposing the `gateway.adapters` entry point."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

import structlog

from gateway.adapters.base import PaymentAdapter, Refunds
from gateway.adapters.momo.adapter import MoMoAdapter
from gateway.adapters.national_platform.adapter import NationalPlatformAdapter
from gateway.adapters.telco.adapter import TelcoAdapter
from gateway.adapters.telco.wire import PROFILES as TELCO_PROFILES
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vnpay.adapter import VNPayAdapter
from gateway.domain import PaymentMethod

log = structlog.get_logger("gateway.adapters")

ENTRY_POINT_GROUP = "gateway.adapters"


class UnknownProvider(LookupError):
    pass


class AdapterRegistry:
    def __init__(self, adapters: Iterable[PaymentAdapter]) -> None:
        self._adapters: dict[str, PaymentAdapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: PaymentAdapter) -> None:
        if not isinstance(adapter, PaymentAdapter):
            raise TypeError(f"{adapter!r} does not implement PaymentAdapter")
        if adapter.capabilities.partial_refunds and not isinstance(adapter, Refunds):
            raise TypeError(f"{adapter.name} declares partial refunds but does not implement Refunds")
        self._adapters[adapter.name] = adapter

    def get(self, name: str) -> PaymentAdapter:
        try:
            return self._adapters[name]
        except KeyError:
            raise UnknownProvider(name) from None

    def __iter__(self) -> Iterator[PaymentAdapter]:
        return iter(self._adapters.values())

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def for_method(self, method: PaymentMethod) -> list[PaymentAdapter]:
        return [a for a in self._adapters.values() if method in a.capabilities.methods]

    @classmethod
    def with_installed(cls, builtins: Iterable[PaymentAdapter]) -> AdapterRegistry:
        registry = cls(builtins)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
                registry.register(loaded() if isinstance(loaded, type) else loaded)
                log.info("adapter.loaded", entry_point=ep.name)
            except Exception as exc:  # a broken plug-in must not stop the gateway
                log.error("adapter.load_failed", entry_point=ep.name, error=str(exc))
        return registry


def installed_registry() -> AdapterRegistry:
    """The built-in providers (one line each) and every installed package's."""
    return AdapterRegistry.with_installed(
        [
            VietQRAdapter(),
            VNPayAdapter(),
            MoMoAdapter(),
            *(TelcoAdapter(profile) for profile in TELCO_PROFILES),
            NationalPlatformAdapter(),
        ]
    )
