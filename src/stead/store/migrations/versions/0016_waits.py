"""Durable waits and messages: `messages` sent to runs, `waits` (what a run waits for, and
whether it is parked), `run_status` (values a run published). See store/waits.py.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# SQLite's autoincrementing key must be INTEGER PRIMARY KEY; PostgreSQL's is a BIGSERIAL.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        # Grows with every message (SQLite: AUTOINCREMENT, so an id is never used again after
        # its run was pruned): a run's messages in send order, and a requester's handle.
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),  # JSON text
        sa.Column("sent_at", sa.Float, nullable=False),
        sa.Column("idempotency_key", sa.Text),  # NULL: none (NULLs never conflict)
        sa.Column("sender", sa.Text),
        sa.Column("expects_reply", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state", sa.Text, nullable=False),  # pending, consumed, rejected
        sa.Column("step_key", sa.Text),
        sa.Column("consumed_at", sa.Float),
        sa.Column("reply", sa.Text),
        sa.Column("reply_error", sa.Text),
        sa.Column("replied_at", sa.Float),
        sa.UniqueConstraint("run_id", "idempotency_key", name="messages_idempotency"),
        sqlite_autoincrement=True,
    )
    op.create_index("messages_run", "messages", ["run_id", "id"])
    # The oldest pending message of (run, topic): receive's read, and park_run's check.
    op.create_index("messages_pending", "messages", ["run_id", "topic", "id"],
                    sqlite_where=sa.text("state = 'pending'"),
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "waits",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),  # timer, message, input, child, retry
        sa.Column("step_key", sa.Text, nullable=False),
        sa.Column("topic", sa.Text),  # a message's topic, INPUT_TOPIC, or the child run's id
        sa.Column("wake_at", sa.Float),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),  # JSON text
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("parked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # wake_due_runs reads only the parked waits that are due, and the earliest still ahead.
    op.create_index("waits_due", "waits", ["parked", "wake_at"])
    # notify_finished finds the parked waiter of a child run.
    op.create_index("waits_child", "waits", ["topic"],
                    sqlite_where=sa.text("kind = 'child'"),
                    postgresql_where=sa.text("kind = 'child'"))
    op.create_table(
        "run_status",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),  # JSON text
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("step_key", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("run_status")
    op.drop_index("waits_child", "waits")
    op.drop_index("waits_due", "waits")
    op.drop_table("waits")
    op.drop_index("messages_pending", "messages")
    op.drop_index("messages_run", "messages")
    op.drop_table("messages")
