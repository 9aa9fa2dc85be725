"""API keys of the HTTP server: only a hash of each key is stored.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),  # what the key is for, e.g. "ci"
        sa.Column("prefix", sa.Text, nullable=False),  # first 8 characters of its secret part
        # SHA-256 (hex) of the whole key. Keys are 32 random bytes, so a plain hash cannot be
        # reversed by guessing; it lets a request's key be found by one indexed lookup.
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),  # a revoked key stays listed, and is refused
    )
    op.create_index("api_keys_hash", "api_keys", ["hash"], unique=True)


def downgrade() -> None:
    op.drop_index("api_keys_hash", "api_keys")
    op.drop_table("api_keys")
