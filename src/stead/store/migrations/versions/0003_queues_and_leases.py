"""Queues, leases and fencing of runs; workers; global tag limits and their slots.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LIVE = "state IN ('Running', 'Retrying')"


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("queue", sa.Text))
        runs.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        # Fencing token: bumped by every claim and recovery. Writes of an executor holding an
        # older epoch are refused, so a worker that wakes from a long pause writes nothing.
        runs.add_column(sa.Column("lease_epoch", sa.Integer, nullable=False,
                                  server_default="0"))
        runs.add_column(sa.Column("lease_expires_at", sa.Float))
        runs.add_column(sa.Column("worker_id", sa.Text))
        runs.add_column(sa.Column("recoveries", sa.Integer, nullable=False, server_default="0"))
        runs.add_column(sa.Column("max_recoveries", sa.Integer, nullable=False,
                                  server_default="3"))
    # What a claim reads: the pending (or late) runs of a queue, best priority then oldest first (in
    # the index's order, so a claim reads a few index entries instead of sorting the queue).
    op.create_index("runs_pending", "runs",
                    ["queue", sa.text("priority DESC"), "created_at", "seq"],
                    postgresql_where=sa.text("state IN ('Pending', 'Late')"),
                    sqlite_where=sa.text("state IN ('Pending', 'Late')"))
    # What the lease reaper reads, and the running count of a limited queue.
    op.create_index("runs_leased", "runs", ["lease_expires_at"],
                    postgresql_where=sa.text(f"lease_expires_at IS NOT NULL AND {_LIVE}"),
                    sqlite_where=sa.text(f"lease_expires_at IS NOT NULL AND {_LIVE}"))
    op.create_index("runs_queue_state", "runs", ["queue", "state"])
    op.create_table(
        "queues",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("concurrency_limit", sa.Integer),  # NULL: unlimited
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("queues", sa.Text, nullable=False),  # JSON list
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("running", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "limits",
        sa.Column("name", sa.Text, primary_key=True),  # the tag it limits
        sa.Column("concurrency", sa.Integer),
        sa.Column("rate", sa.Integer),
        sa.Column("period", sa.Float),
    )
    op.create_table(
        "slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),  # "concurrency" or "rate"
        sa.Column("holder", sa.Text, nullable=False),  # "RUN_ID/STEP_KEY"
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("slots_name", "slots", ["name", "kind", "expires_at"])


def downgrade() -> None:
    op.drop_table("slots")
    op.drop_table("limits")
    op.drop_table("workers")
    op.drop_table("queues")
    for index in ("runs_queue_state", "runs_leased", "runs_pending"):
        op.drop_index(index, "runs")
    with op.batch_alter_table("runs") as runs:
        for column in ("max_recoveries", "recoveries", "worker_id", "lease_expires_at",
                       "lease_epoch", "priority", "queue"):
            runs.drop_column(column)
