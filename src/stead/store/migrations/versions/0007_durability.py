"""The durability level of each run (fsync, process or batched), which its commits follow.

Runs recorded before this revision were written with SQLite's synchronous=NORMAL (or
PostgreSQL's default), which is the "process" level.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("durability", sa.Text, nullable=False,
                                  server_default="process"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("durability")
