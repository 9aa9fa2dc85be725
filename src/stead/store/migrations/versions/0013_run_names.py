"""Run names and versions: `runs.name` (the flow's `flow_run_name`), `runs.version` (the
flow's `version`), and `steps.run_name` (a task call's `task_run_name`, or a child flow
run's name; `steps.name` stays the task's name, which replay compares).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for rows written before this revision: no name given, no version recorded.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("name", sa.Text, nullable=True))
        batch.add_column(sa.Column("version", sa.Text, nullable=True))
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("run_name", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("run_name")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("version")
        batch.drop_column("name")
