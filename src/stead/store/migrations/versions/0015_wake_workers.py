"""PostgreSQL wakes idle workers when a run becomes claimable (LISTEN/NOTIFY), so they do
not wait for their next poll: a trigger notifies channel `stead_runs` with the queue's name
whenever a queued run becomes Pending or Late, and whenever a queue's concurrency limit
changes (a limit lifted or raised makes runs claimable). SQLite: nothing (workers poll).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_notify within a transaction is delivered at commit, once per distinct payload: an
    # enqueue of many runs of one queue is one notification.
    op.execute("""
        CREATE FUNCTION stead_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'queues' THEN  -- (each branch is planned when it runs)
                PERFORM pg_notify('stead_runs', NEW.name);
            ELSE
                PERFORM pg_notify('stead_runs', NEW.queue);
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER runs_wake_workers AFTER INSERT OR UPDATE OF state ON runs
        FOR EACH ROW WHEN (NEW.queue IS NOT NULL AND NEW.state IN ('Pending', 'Late'))
        EXECUTE FUNCTION stead_wake_workers()""")
    op.execute("""
        CREATE TRIGGER queues_wake_workers AFTER INSERT OR UPDATE OF concurrency_limit
        ON queues FOR EACH ROW EXECUTE FUNCTION stead_wake_workers()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS queues_wake_workers ON queues")
    op.execute("DROP TRIGGER IF EXISTS runs_wake_workers ON runs")
    op.execute("DROP FUNCTION IF EXISTS stead_wake_workers()")
