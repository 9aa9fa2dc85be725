"""The audit log: one row per state-changing or refused request (store/audit.py).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),  # when the request arrived
        sa.Column("key_id", sa.Text),  # NULL: the local user, or no valid key
        sa.Column("key_name", sa.Text),
        sa.Column("role", sa.Text),
        sa.Column("address", sa.Text),  # the client's IP, or "local" (a command on the host)
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("outcome", sa.Integer, nullable=False),  # the HTTP status
        sa.Column("detail", sa.Text),  # never a request body or a secret
    )
    op.create_index("audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("audit_log_at", "audit_log")
    op.drop_table("audit_log")
