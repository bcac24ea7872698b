"""the self-service space: its signed-in sessions (an officine, a pharmacist or a professional), the
one-time sign-in links sent to officines, and the OpenID Connect sign-ins under way

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "self_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("finesses", sa.JSON(), nullable=False),
        sa.Column("rpps", sa.String(11), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("seen_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=True),
    )
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("finess", sa.String(9), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False, index=True),
        sa.Column("used_at", UTC, nullable=True),
    )
    op.create_table(
        "oidc_starts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("created_at", UTC, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("oidc_starts")
    op.drop_table("sign_in_links")
    op.drop_table("self_sessions")
