"""Deployments (named, versioned flow entrypoints), their schedules, and the runs they create.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("flow_name", sa.Text, nullable=False),
        sa.Column("entrypoint", sa.Text, nullable=False),  # "module:qualname"
        sa.Column("script_path", sa.Text),  # the file, for flows defined in a script
        sa.Column("params", sa.Text, nullable=False),  # JSON: default parameters
        sa.Column("param_schema", sa.Text, nullable=False),  # JSON Schema of the parameters
        sa.Column("queue", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),  # JSON list
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.Text, nullable=False),  # the name; runs use its latest version
        sa.Column("schedule", sa.Text, nullable=False),  # JSON (deployments/schedules.py)
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("missed", sa.Text, nullable=False),  # "all", "latest" or "skip"
        sa.Column("last_fire_at", sa.Float),  # the latest fire time a run was created for
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("schedules_deployment", "schedules", ["deployment"])
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("deployment", sa.Text))
        runs.add_column(sa.Column("deployment_version", sa.Integer))
        runs.add_column(sa.Column("scheduled_for", sa.Float))  # when a scheduled run is due
    # What the scheduler reads: scheduled runs coming due, pending runs becoming late.
    op.create_index("runs_scheduled", "runs", ["scheduled_for"],
                    postgresql_where=sa.text("state IN ('Scheduled', 'Pending')"),
                    sqlite_where=sa.text("state IN ('Scheduled', 'Pending')"))
    op.create_index("runs_deployment", "runs", ["deployment", "created_at"])


def downgrade() -> None:
    op.drop_index("runs_deployment", "runs")
    op.drop_index("runs_scheduled", "runs")
    with op.batch_alter_table("runs") as runs:
        for column in ("scheduled_for", "deployment_version", "deployment"):
            runs.drop_column(column)
    op.drop_table("schedules")
    op.drop_table("deployments")
