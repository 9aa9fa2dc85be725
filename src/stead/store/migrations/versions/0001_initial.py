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
        sa.Column("id", sa.Text, primary_key=True),
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
    op.create_table(
        "steps",
        sa.Column("run_id", sa.Text, primary_key=True),
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
        sa.Column("history", sa.Text, nullable=False, server_default="[]"),
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
