"""the vocabulary in the schema: an outbox row's state is one of the email states, and a run records
which step failed for good (one of the run steps) beside why

The codes are written out here as they were when this revision was made (pipeline/domain/vocabulary.py):
a migration describes the schema at its point in history.

Revision ID: 0007
Revises: 0006
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

EMAIL_STATES = ("pending", "claimed", "sending", "retry", "sent", "failed", "unknown")
RUN_STEPS = ("close", "allocate", "schedule", "prepare_confirmations", "send", "export")


def _one_of(column: str, codes: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(code) for code in codes)})"


def upgrade() -> None:
    # Added with its constraint in one ALTER, which SQLite allows for a column: rebuilding `runs`
    # (SQLite's way to add a table constraint) would drop it, and with it, by cascade, the outbox.
    op.execute(f"ALTER TABLE runs ADD COLUMN failed_step VARCHAR(24) "
               f"CONSTRAINT ck_runs_failed_step CHECK ({_one_of('failed_step', RUN_STEPS)})")
    with op.batch_alter_table("outbox") as table:
        table.create_check_constraint("ck_outbox_state", _one_of("state", EMAIL_STATES))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.drop_constraint("ck_outbox_state", type_="check")
    op.execute("ALTER TABLE runs DROP COLUMN failed_step")  # in place, for the same reason (SQLite 3.35+)
