"""Adapters are found built in and through the `gateway.adapters` entry point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from gateway.adapters import registry as registry_module
from gateway.adapters.base import PaymentAdapter
from gateway.adapters.registry import AdapterRegistry, UnknownProvider
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.domain import PaymentMethod


class BankPlugin(VietQRAdapter):
    name = "agribank_qr"


def test_installed_packages_contribute_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint(name="agribank_qr", value=f"{__name__}:BankPlugin", group="gateway.adapters"),
        EntryPoint(name="broken", value="no_such_module:Adapter", group="gateway.adapters"),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [p for p in points if p.group == group])
    registry = AdapterRegistry.with_installed([VietQRAdapter()])
    assert registry.names() == ["agribank_qr", "vietqr"]  # the broken plug-in is logged and skipped
    assert {a.name for a in registry.for_method(PaymentMethod.vietqr)} == {"vietqr", "agribank_qr"}
    assert registry.for_method(PaymentMethod.card) == []
    with pytest.raises(UnknownProvider):
        registry.get("momo")


def test_something_that_is_not_an_adapter_is_refused() -> None:
    with pytest.raises(TypeError):
        AdapterRegistry([object()])  # type: ignore[list-item]
    assert isinstance(VietQRAdapter(), PaymentAdapter)
