"""a bill's customer is checked with its merchant and mode in one foreign key: (merchant_id, livemode,
customer_id) → customers, instead of customer_id → customers plus merchant_id → merchants

Each foreign key is a lookup per inserted row (the bulk import's largest cost in PostgreSQL, bench S6): one key
instead of two, and a stronger one — a bill can no longer name another merchant's (or mode's) customer; its
merchant exists because its customer's does. customers' (merchant_id, livemode, id) index, which the customer
list pages by, becomes the unique constraint the key refers to (unique anyway: id is the primary key).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_merchant_id_livemode_id"))
        batch_op.create_unique_constraint(
            batch_op.f("uq_customers_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"]
        )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_bills_customer_id_customers"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_bills_merchant_id_merchants"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_bills_merchant_id_customers"),
            "customers",
            ["merchant_id", "livemode", "customer_id"],
            ["merchant_id", "livemode", "id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_bills_merchant_id_customers"), type_="foreignkey")
        batch_op.create_foreign_key(batch_op.f("fk_bills_merchant_id_merchants"), "merchants", ["merchant_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_bills_customer_id_customers"), "customers", ["customer_id"], ["id"])
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customers_merchant_id_livemode_id"), type_="unique")
        batch_op.create_index(
            batch_op.f("ix_customers_merchant_id_livemode_id"), ["merchant_id", "livemode", "id"], unique=False
        )
