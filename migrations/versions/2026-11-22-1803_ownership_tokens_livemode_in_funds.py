"""ownership tokens for idempotency keys and webhook leases; livemode in the funds dedupe key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:03:56.485369
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))

    # Test and live transfers are told apart: a sandbox transaction id can never shadow a real one.
    with op.batch_alter_table("received_funds", schema=None) as batch_op:
        batch_op.drop_constraint("uq_received_funds_provider_provider_transaction_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_received_funds_provider_livemode_provider_transaction_id",
            ["provider", "livemode", "provider_transaction_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("received_funds", schema=None) as batch_op:
        batch_op.drop_constraint("uq_received_funds_provider_livemode_provider_transaction_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_received_funds_provider_provider_transaction_id", ["provider", "provider_transaction_id"]
        )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("claim_token")

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("owner")
