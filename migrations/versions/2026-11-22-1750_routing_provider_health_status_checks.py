"""routing, provider health, status checks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:50:47.806629
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_health",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "livemode", name=op.f("pk_provider_health")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_status_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_checks", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(
            "ix_payments_status_check_due",
            ["next_status_check_at"],
            unique=False,
            postgresql_where=sa.text("next_status_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_status_check_at IS NOT NULL"),
        )

    with op.batch_alter_table("provider_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="100", nullable=False))
        batch_op.add_column(sa.Column("min_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("max_amount", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_status_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_checks", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_refunds_next_status_check_at"), ["next_status_check_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_next_status_check_at"))
        batch_op.drop_column("status_checks")
        batch_op.drop_column("next_status_check_at")

    with op.batch_alter_table("provider_accounts", schema=None) as batch_op:
        batch_op.drop_column("max_amount")
        batch_op.drop_column("min_amount")
        batch_op.drop_column("priority")
        batch_op.drop_column("enabled")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_payments_status_check_due",
            postgresql_where=sa.text("next_status_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_status_check_at IS NOT NULL"),
        )
        batch_op.drop_column("status_checks")
        batch_op.drop_column("next_status_check_at")

    op.drop_table("provider_health")
