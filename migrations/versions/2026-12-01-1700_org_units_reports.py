"""organisation units and reports (§17): the org_units tree, merchants.org_unit, and on payments the unit, moment and
Vietnam day they succeeded (backfilled for the payments already succeeded), indexed for the reports; receipts name
the national platform's transaction and receipt (§16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REPORT_INCLUDE = [
    "org_unit",
    "merchant_id",
    "livemode",
    "channel",
    "method",
    "provider",
    "amount_received",
    "amount_refunded",
]


def upgrade() -> None:
    op.create_table(
        "org_units",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("online_target", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent_code"], ["org_units.code"], name=op.f("fk_org_units_parent_code_org_units")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_org_units")),
    )
    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_units_parent_code"), ["parent_code"], unique=False)

    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_unit", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_merchants_org_unit_org_units"), "org_units", ["org_unit"], ["code"])

    # §16: a receipt of a payment through the national platform names the platform's transaction and receipt.
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national_platform", sa.JSON(), nullable=True))

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_unit", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("succeeded_on", sa.Date(), nullable=True))

    # The payments already succeeded: when is their `payment.succeeded` event (written in the transaction that made
    # them succeed), else their last update; their bill's customer's unit is theirs (merchants had none before).
    op.execute(
        "UPDATE payments SET succeeded_at = COALESCE((SELECT MIN(events.created_at) FROM events "
        "WHERE events.payment_id = payments.id AND events.type = 'payment.succeeded'), updated_at) "
        "WHERE status = 'succeeded'"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE payments SET succeeded_on = (succeeded_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date "
            "WHERE status = 'succeeded'"
        )
    else:
        op.execute("UPDATE payments SET succeeded_on = date(succeeded_at, '+7 hours') WHERE status = 'succeeded'")
    op.execute(
        "UPDATE payments SET org_unit = (SELECT customers.org_unit FROM customers "
        "WHERE customers.id = payments.customer_id) WHERE status = 'succeeded' AND customer_id IS NOT NULL"
    )

    if op.get_bind().dialect.name == "postgresql":
        # The reports read the index only while the visibility map is current: vacuum payments after 1 % of it
        # changed or was inserted, not the default 20 % (bench S8: an unvacuumed month read twice as slowly).
        op.execute(
            "ALTER TABLE payments SET (autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_vacuum_insert_scale_factor = 0.01)"
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_report",
            ["succeeded_on"],
            unique=False,
            postgresql_include=_REPORT_INCLUDE,
            postgresql_where=sa.text("succeeded_on IS NOT NULL"),
            sqlite_where=sa.text("succeeded_on IS NOT NULL"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payments RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor)")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_report")
        batch_op.drop_column("succeeded_on")
        batch_op.drop_column("succeeded_at")
        batch_op.drop_column("org_unit")

    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("national_platform")

    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_merchants_org_unit_org_units"), type_="foreignkey")
        batch_op.drop_column("org_unit")

    with op.batch_alter_table("org_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_units_parent_code"))

    op.drop_table("org_units")
