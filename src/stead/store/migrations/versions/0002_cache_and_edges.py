"""Task cache entries, and the dependency edges between steps.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys of the steps whose futures this step waited for, as a JSON list (NULL: none).
    op.add_column("steps", sa.Column("depends_on", sa.Text))
    # For Cached steps: the cache key, and "RUN_ID/STEP_KEY" of the step that made the value.
    op.add_column("steps", sa.Column("cache_key", sa.Text))
    op.add_column("steps", sa.Column("cached_from", sa.Text))
    op.create_table(
        "cache",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("result", sa.Text),
        sa.Column("result_ref", sa.Text),
        sa.Column("run_id", sa.Text, nullable=False),  # the run whose step produced the value
        sa.Column("step_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),  # NULL: never expires
    )


def downgrade() -> None:
    op.drop_table("cache")
    for column in ("cached_from", "cache_key", "depends_on"):
        op.drop_column("steps", column)
