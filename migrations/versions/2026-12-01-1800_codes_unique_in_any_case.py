"""biller codes and partner codes unique in any case: unique indexes on upper(code)

They are matched case-insensitively (`evn` names the merchant whose code is `EVN`); the plain unique constraints
only refused the same spelling, so two concurrent writes of `EVN` and `evn` could both land. The index on
upper(biller_code) is also what a partner's lookup by biller code uses.

SQLite cannot reflect expression indexes: a later `batch_alter_table` on merchants or partners (which rebuilds the
table on SQLite) must create these two indexes again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _refuse_spellings_of_one_code(table: str, column: str) -> None:
    """The old constraint allowed `EVN` beside `evn`: name them, rather than fail on the index with a bare error."""
    key = f"upper({column})"
    query = f"SELECT {key} FROM {table} WHERE {column} IS NOT NULL GROUP BY {key} HAVING count(*) > 1"  # noqa: S608
    clashes = op.get_bind().execute(sa.text(query)).scalars().all()
    if clashes:
        raise RuntimeError(
            f"{table}.{column} holds one code in several cases ({', '.join(sorted(clashes))}): rename all but one, "
            "then migrate again"
        )


def upgrade() -> None:
    _refuse_spellings_of_one_code("merchants", "biller_code")
    _refuse_spellings_of_one_code("partners", "code")
    op.create_index("uq_merchants_biller_code_upper", "merchants", [sa.text("upper(biller_code)")], unique=True)
    op.create_index("uq_partners_code_upper", "partners", [sa.text("upper(code)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_partners_code_upper", table_name="partners")
    op.drop_index("uq_merchants_biller_code_upper", table_name="merchants")
