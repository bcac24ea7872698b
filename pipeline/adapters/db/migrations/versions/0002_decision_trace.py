"""the trace of each decision, for `vialflow explain`

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

TRACE = ("cap", "nurses", "cap_used_before", "after_cap", "supply_before")


def upgrade() -> None:
    with op.batch_alter_table("decisions") as table:
        for name in TRACE:
            table.add_column(sa.Column(name, sa.Integer(), nullable=True))
        table.add_column(sa.Column("pro_rata_share", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as table:
        for name in ("pro_rata_share", *reversed(TRACE)):
            table.drop_column(name)
