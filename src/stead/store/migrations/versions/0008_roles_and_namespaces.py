"""Least privilege: API keys get a role, namespaces and queues; runs and deployments a
namespace; runs the key that created them; workers the key that registered them.

Keys made before this revision could do everything: they become admin keys of every
namespace, so nothing that worked stops working (`stead keys ls` shows them as such).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as keys:
        keys.add_column(sa.Column("role", sa.Text, nullable=False, server_default="admin"))
        # JSON list of namespace names; ["*"] is every namespace.
        keys.add_column(sa.Column("namespaces", sa.Text, nullable=False,
                                  server_default='["*"]'))
        keys.add_column(sa.Column("queues", sa.Text))  # JSON list; NULL: any queue
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("namespace", sa.Text, nullable=False,
                                  server_default="default"))
        # "ROLE:KEY_ID" of the API key that created the run; NULL: made where the database is.
        runs.add_column(sa.Column("created_by", sa.Text))
    with op.batch_alter_table("deployments") as deployments:
        deployments.add_column(sa.Column("namespace", sa.Text, nullable=False,
                                         server_default="default"))
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("key_id", sa.Text))  # the API key it registered with


def downgrade() -> None:
    with op.batch_alter_table("workers") as workers:
        workers.drop_column("key_id")
    with op.batch_alter_table("deployments") as deployments:
        deployments.drop_column("namespace")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("created_by")
        runs.drop_column("namespace")
    with op.batch_alter_table("api_keys") as keys:
        keys.drop_column("queues")
        keys.drop_column("namespaces")
        keys.drop_column("role")
