"""Runs, their state history, steps and logs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        # seq: a compact integer key that steps refer to; `id` is the public run id.
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("flow_name", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("entrypoint", sa.Text, nullable=False),
        sa.Column("script_path", sa.Text),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Text),
        sa.Column("parent_step", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("result", sa.Text),
        sa.Column("result_ref", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("resumes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.Text),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("runs_created", "runs", ["created_at"])
    op.create_index("runs_state", "runs", ["state", "created_at"])
    op.create_index("runs_parent", "runs", ["parent_id"])
    op.create_table(
        "run_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_index("run_history_run", "run_history", ["run_id", "id"])
    if op.get_bind().dialect.name == "sqlite":
        # Keys of top-level steps are stored as integers (nested ones, "7.2", as text): the
        # column has no declared type so SQLite keeps each as given. Integer keys arrive in
        # order, which makes the per-step insert (the engine's hot path) ~25% cheaper.
        op.execute("""
            CREATE TABLE steps (
                run_seq INTEGER NOT NULL,
                key NOT NULL,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                started_at FLOAT,
                ended_at FLOAT,
                params TEXT,
                result TEXT,
                result_ref TEXT,
                error TEXT,
                history TEXT,
                child_run_id TEXT,
                PRIMARY KEY (run_seq, key)
            ) WITHOUT ROWID""")
    else:
        op.create_table(
            "steps",
            sa.Column("run_seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("started_at", sa.Float),
            sa.Column("ended_at", sa.Float),
            sa.Column("params", sa.Text),
            sa.Column("result", sa.Text),
            sa.Column("result_ref", sa.Text),
            sa.Column("error", sa.Text),
            sa.Column("history", sa.Text),  # NULL: derived from started_at/ended_at/state
            sa.Column("child_run_id", sa.Text),
        )
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("step_key", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("logs_run", "logs", ["run_id", "id"])


def downgrade() -> None:
    for table in ("logs", "steps", "run_history", "runs"):
        op.drop_table(table)
