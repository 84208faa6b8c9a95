"""customers, bills, the allocation journal and receipts (§11, §14); payments gain channel, customer, bill, counter

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:49:32.986546
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("code_key", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("org_unit", sa.String(length=32), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("payment_code", sa.String(length=20), nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="VND", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_customers_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "merchant_id", "livemode", "code_key", name=op.f("uq_customers_merchant_id_livemode_code_key")
        ),
        sa.UniqueConstraint("payment_code", name=op.f("uq_customers_payment_code")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"], unique=False
        )

    op.create_table(
        "receipt_counters",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_receipt_counters_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "livemode", "template", "series", "year", name=op.f("pk_receipt_counters")
        ),
    )
    op.create_table(
        "receipt_settings",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_receipt_settings_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_receipt_settings")),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("payer", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_in_words", sa.String(length=500), nullable=False),
        sa.Column("bill_ids", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("lookup_code", sa.String(length=32), nullable=False),
        sa.Column("replaces", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_receipts_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("lookup_code", name=op.f("uq_receipts_lookup_code")),
        sa.UniqueConstraint(
            "merchant_id",
            "livemode",
            "template",
            "series",
            "year",
            "number",
            name=op.f("uq_receipts_merchant_id_livemode_template_series_year_number"),
        ),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_receipts_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_receipts_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("bill_id", sa.String(length=40), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_allocations_customer_id_customers")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_allocations_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocations_bill_id_id"), ["bill_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_allocations_customer_id_payment_id"), ["customer_id", "payment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_allocations_payment_id_id"), ["payment_id", "id"], unique=False)

    op.create_table(
        "bills",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("period", sa.String(length=32), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("amount_rule", sa.String(length=16), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_bills_customer_id_customers")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_bills_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("merchant_id", "livemode", "number", name=op.f("uq_bills_merchant_id_livemode_number")),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bills_customer_id_status_due_date_created_at"),
            ["customer_id", "status", "due_date", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_bills_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_bills_merchant_id_livemode_period_id"),
            ["merchant_id", "livemode", "period", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_bills_merchant_id_livemode_status_id"),
            ["merchant_id", "livemode", "status", "id"],
            unique=False,
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), server_default="online", nullable=False))
        batch_op.add_column(sa.Column("customer_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("bill_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("counter", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_payments_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_customer_id"))
        batch_op.drop_index(batch_op.f("ix_payments_bill_id"))
        batch_op.drop_column("counter")
        batch_op.drop_column("bill_id")
        batch_op.drop_column("customer_id")
        batch_op.drop_column("channel")

    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bills_merchant_id_livemode_status_id"))
        batch_op.drop_index(batch_op.f("ix_bills_merchant_id_livemode_period_id"))
        batch_op.drop_index(batch_op.f("ix_bills_merchant_id_livemode_id"))
        batch_op.drop_index(batch_op.f("ix_bills_customer_id_status_due_date_created_at"))

    op.drop_table("bills")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocations_payment_id_id"))
        batch_op.drop_index(batch_op.f("ix_allocations_customer_id_payment_id"))
        batch_op.drop_index(batch_op.f("ix_allocations_bill_id_id"))

    op.drop_table("allocations")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_payment_id"))
        batch_op.drop_index(batch_op.f("ix_receipts_merchant_id_livemode_id"))

    op.drop_table("receipts")
    op.drop_table("receipt_settings")
    op.drop_table("receipt_counters")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_merchant_id_livemode_id"))

    op.drop_table("customers")
