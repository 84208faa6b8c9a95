"""collection partners (§12): partners, their merchants, collections and the raw requests kept for audit; merchants
gain a unique biller_code, payments the partner channel

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 13:50:27.079247
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("http_method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("collection_id", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_requests")),
    )
    with op.batch_alter_table("partner_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_requests_partner_id_received_at"), ["partner_id", "received_at"], unique=False
        )

    op.create_table(
        "partners",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("shows_full_names", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("code", name=op.f("uq_partners_code")),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("partner_transaction_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("allocations", sa.JSON(), nullable=False),
        sa.Column("balance_added", sa.BigInteger(), nullable=False),
        sa.Column("receipt_number", sa.String(length=8), nullable=True),
        sa.Column("payer", sa.JSON(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversal_reason", sa.String(length=255), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_collections_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_collections_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint(
            "partner_id", "partner_transaction_id", name=op.f("uq_collections_partner_id_partner_transaction_id")
        ),
        sa.UniqueConstraint("payment_id", name=op.f("uq_collections_payment_id")),
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collections_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"], unique=False
        )

    op.create_table(
        "merchant_partners",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_partners_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_merchant_partners_partner_id_partners")),
        sa.PrimaryKeyConstraint("merchant_id", "partner_id", name=op.f("pk_merchant_partners")),
    )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("biller_code", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_merchants_biller_code"), ["biller_code"])

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_channel", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("partner_channel")

    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_merchants_biller_code"), type_="unique")
        batch_op.drop_column("biller_code")

    op.drop_table("merchant_partners")
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collections_merchant_id_livemode_id"))

    op.drop_table("collections")
    op.drop_table("partners")
    with op.batch_alter_table("partner_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_requests_partner_id_received_at"))

    op.drop_table("partner_requests")
