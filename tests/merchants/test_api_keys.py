"""API keys: revoked only by their merchant, stored hashed (CONTRACT §9)."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from gateway.runtime import Runtime
from tests.conftest import (
    ADMIN,
    assert_problem,
    bearer,
    new_key,
)


async def test_revoking_a_key_of_another_merchant_is_404(client: httpx.AsyncClient) -> None:
    a = await client.post("/v1/merchants", json={"name": "A", "category": "water"}, headers=ADMIN)
    b = await client.post("/v1/merchants", json={"name": "B", "category": "water"}, headers=ADMIN)
    a_key = a.json()["api_key"]
    response = await client.delete(f"/v1/merchants/{b.json()['id']}/api-keys/{a_key['id']}", headers=ADMIN)
    assert_problem(response, 404, "not_found")
    assert (await client.get("/v1/payments", headers=bearer(a_key["secret"]))).status_code == 200


async def test_api_keys_are_stored_hashed(client: httpx.AsyncClient, rt: Runtime) -> None:
    created = await client.post("/v1/merchants", json={"name": "EVN HCMC", "category": "electricity"}, headers=ADMIN)
    merchant_id = created.json()["id"]
    secrets = [
        created.json()["api_key"]["secret"],
        (await new_key(client, merchant_id, "test"))["secret"],
        (await new_key(client, merchant_id, "live"))["secret"],
    ]
    for secret in secrets:
        assert (await client.get("/v1/payments", headers=bearer(secret))).status_code == 200

    async with rt.db.transaction() as session:
        rows = (await session.execute(text("SELECT * FROM api_keys"))).all()
    assert len(rows) == 3
    dump = "\n".join(repr(tuple(row)) for row in rows)
    for secret in secrets:
        assert secret not in dump
        assert secret.split("_", 2)[2] not in dump  # not even the random part without its prefix
