"""leases on outbox rows, a settled stamp per run, a hold per session, and the actions log

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.add_column(sa.Column("lease_until", UTC, nullable=True))
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("exported_at", UTC, nullable=True))
        table.add_column(sa.Column("settled_at", UTC, nullable=True))
    with op.batch_alter_table("sessions") as table:
        table.add_column(sa.Column("held_by", sa.String(200), nullable=True))
        table.add_column(sa.Column("held_until", UTC, nullable=True))
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_actions_at", "actions", ["at"])
    op.create_index("ix_outbox_state_lease", "outbox", ["state", "lease_until"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_lease", "outbox")
    op.drop_index("ix_actions_at", "actions")
    op.drop_table("actions")
    with op.batch_alter_table("sessions") as table:
        table.drop_column("held_until")
        table.drop_column("held_by")
    with op.batch_alter_table("runs") as table:
        table.drop_column("settled_at")
        table.drop_column("exported_at")
    with op.batch_alter_table("outbox") as table:
        table.drop_column("lease_until")
