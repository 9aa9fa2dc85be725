"""Variables: named JSON values per namespace, for configuration that changes without a
deploy (store/variables.py).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variables",
        sa.Column("namespace", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),  # the value as JSON text
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),  # a JSON list
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("variables")
