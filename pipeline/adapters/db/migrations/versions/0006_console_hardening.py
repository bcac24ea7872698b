"""the console's sign-in throttle (per account and address) and its stored reports

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_at", UTC, nullable=True),
        sa.Column("locked_until", UTC, nullable=True),
        sa.Column("known_at", UTC, nullable=True),
    )
    op.drop_table("sign_in_failures")
    op.create_table(
        "run_reports",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("emails", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("built_at", UTC, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_reports")
    op.drop_table("sign_in_throttle")
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_index("ix_sign_in_failures_name", "sign_in_failures", ["name", "at"])
    op.create_index("ix_sign_in_failures_address", "sign_in_failures", ["address", "at"])
