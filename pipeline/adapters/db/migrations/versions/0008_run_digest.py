"""a run's digest (SHA-256 over its decisions and deliveries), stored at the end of prepare

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER on SQLite too: rebuilding `runs` would drop the outbox by cascade.
    op.add_column("runs", sa.Column("digest", sa.String(71), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.drop_column("digest")
