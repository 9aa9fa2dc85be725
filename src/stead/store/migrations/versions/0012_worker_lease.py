"""Each worker's own lease, so `stead workers ls` tells a lost worker by the lease it runs
with (`stead worker start --lease`), not by the reader's setting.

Revision ID: 0012
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for workers registered before this revision: readers fall back to their setting.
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("lease_s", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("lease_s")
