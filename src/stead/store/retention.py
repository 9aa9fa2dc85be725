"""Retention: deleting old finished runs with everything recorded under them. SQL both
backends share, run inside the backend's transaction like store/leases.py.

A top-level run goes with its whole tree of child runs (found through `parent_id`, which also
finds child runs that were given ids of their own), their steps, state history and log lines,
their messages, waits and published status, and the cache entries they produced. Result
files are not the store's: these functions return the files' references, and say which ones
rows still refer to (core/retention.py deletes the others).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from stead.errors import ConfigError
from stead.store.base import PRUNABLE_STATES, PruneResult
from stead.store.sql import SQLITE, Dialect
from stead.store.waits_sql import delete_for_runs

CHUNK = 500  # values per IN (...) list: far below SQLite's and PostgreSQL's limits
REF_CHUNK = 10_000  # result references checked per query (SQLite binds at most 32,766)


def check_states(states: Sequence[str]) -> tuple[str, ...]:
    """`states` without duplicates; ConfigError if empty or if one is not a final state."""
    wrong = [s for s in states if s not in PRUNABLE_STATES]
    if wrong or not states:
        raise ConfigError(f"cannot prune runs in state {', '.join(wrong) or '(none given)'}: "
                          f"only finished runs are pruned, in {', '.join(PRUNABLE_STATES)}")
    return tuple(dict.fromkeys(states))


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _roots(d: Dialect, states: tuple[str, ...]) -> str:
    """The WHERE clause of prunable top-level runs; arguments: states, then `before`."""
    return (f"parent_id IS NULL AND state IN ({d.marks(len(states))}) AND ended_at IS NOT NULL "
            f"AND ended_at < {d.p}")


def _tree(d: Dialect, roots: str) -> str:
    """A recursive CTE `tree(seq, id, result_ref)`: the runs `roots` selects, and all their
    descendants by parent_id (UNION, not UNION ALL: a malformed cycle cannot loop)."""
    # Once ANALYZE has run, SQLite's statistics count every NULL parent_id as one value and
    # judge runs_parent useless: without the hint it scans all runs for every run of the
    # tree (measured on 10^5 runs: a dry run had not finished after 3 minutes; with it, 2 s).
    hint = " INDEXED BY runs_parent" if d == SQLITE else ""
    return (f"WITH RECURSIVE tree(seq, id, result_ref) AS (SELECT seq, id, result_ref FROM "
            f"runs WHERE {roots} UNION SELECT r.seq, r.id, r.result_ref FROM runs r{hint} "
            "JOIN tree t ON r.parent_id = t.id) ")


def prune_runs(conn: Any, d: Dialect, before: float, states: Sequence[str],
               limit: int) -> PruneResult:
    """See Store.prune_runs. Runs inside one write transaction."""
    states = check_states(states)
    p = d.p
    # Oldest first, in the order of the runs_parent index (parent_id, then seq): a batch
    # reads about as many index entries as it deletes runs, and sorts nothing. SKIP LOCKED
    # (PostgreSQL): a run another transaction is changing (a resume of a Failed run) is
    # left for the next prune rather than waited for.
    roots = [seq for (seq,) in conn.execute(
        f"SELECT seq FROM runs WHERE {_roots(d, states)} ORDER BY seq LIMIT {p}"
        f"{d.skip_locked}", (*states, before, limit)).fetchall()]
    result = PruneResult()
    if not roots:
        return result
    runs: dict[int, tuple[str, str | None]] = {}  # seq -> (id, result_ref)
    for chunk in _chunks(roots):
        rows = conn.execute(f"{_tree(d, f'seq IN ({d.marks(len(chunk))})')}"
                            "SELECT seq, id, result_ref FROM tree", chunk).fetchall()
        runs.update((seq, (run_id, ref)) for seq, run_id, ref in rows)
    seqs = list(runs)
    ids = [run_id for run_id, _ in runs.values()]
    refs = {ref for _, ref in runs.values() if ref is not None}
    for chunk in _chunks(seqs):
        rows = conn.execute(f"DELETE FROM steps WHERE run_seq IN ({d.marks(len(chunk))}) "
                            "RETURNING result_ref", chunk).fetchall()
        result.steps += len(rows)
        refs.update(ref for (ref,) in rows if ref is not None)
    for chunk in _chunks(ids):
        marks = d.marks(len(chunk))
        rows = conn.execute(f"DELETE FROM cache WHERE run_id IN ({marks}) RETURNING result_ref",
                            chunk).fetchall()
        result.cache += len(rows)
        refs.update(ref for (ref,) in rows if ref is not None)
        result.logs += conn.execute(f"DELETE FROM logs WHERE run_id IN ({marks})",
                                    chunk).rowcount
        conn.execute(f"DELETE FROM run_history WHERE run_id IN ({marks})", chunk)
        delete_for_runs(conn, d, list(chunk))  # their messages, waits and published status
    for chunk in _chunks(seqs):
        result.runs += conn.execute(f"DELETE FROM runs WHERE seq IN ({d.marks(len(chunk))})",
                                    chunk).rowcount
    result.result_refs = sorted(refs)
    return result


def count_prunable(conn: Any, d: Dialect, before: float, states: Sequence[str]) -> PruneResult:
    """See Store.count_prunable: what prune_runs would delete, read without deleting."""
    states = check_states(states)
    tree = _tree(d, _roots(d, states))
    args = (*states, before)
    in_tree = "run_seq IN (SELECT seq FROM tree)"

    def count(sql: str) -> int:
        return int(conn.execute(f"{tree}{sql}", args).fetchone()[0])

    result = PruneResult(
        runs=count("SELECT count(*) FROM tree"),
        steps=count(f"SELECT count(*) FROM steps WHERE {in_tree}"),
        logs=count("SELECT count(*) FROM logs WHERE run_id IN (SELECT id FROM tree)"),
        cache=count("SELECT count(*) FROM cache WHERE run_id IN (SELECT id FROM tree)"))
    if result.runs:
        # The files of the rows that would go, less those that rows staying refer to.
        rows = conn.execute(
            f"{tree}, gone(ref) AS ("
            f"SELECT result_ref FROM tree WHERE result_ref IS NOT NULL "
            f"UNION SELECT result_ref FROM steps WHERE {in_tree} AND result_ref IS NOT NULL "
            "UNION SELECT result_ref FROM cache WHERE run_id IN (SELECT id FROM tree) "
            "AND result_ref IS NOT NULL) "
            "SELECT ref FROM gone EXCEPT SELECT result_ref FROM ("
            "SELECT result_ref FROM steps s WHERE result_ref IN (SELECT ref FROM gone) AND "
            "NOT EXISTS (SELECT 1 FROM tree t WHERE t.seq = s.run_seq) "
            "UNION SELECT result_ref FROM runs r WHERE result_ref IN (SELECT ref FROM gone) "
            "AND NOT EXISTS (SELECT 1 FROM tree t WHERE t.seq = r.seq) "
            "UNION SELECT result_ref FROM cache c WHERE result_ref IN (SELECT ref FROM gone) "
            "AND NOT EXISTS (SELECT 1 FROM tree t WHERE t.id = c.run_id)) kept",
            args).fetchall()
        result.result_refs = sorted(ref for (ref,) in rows)
    return result


def results_in_use(conn: Any, d: Dialect, refs: Sequence[str]) -> list[str]:
    """See Store.results_in_use (a list, not a set: it travels as JSON to remote callers)."""
    used: set[str] = set()
    # Without an index on result_ref each query scans the tables once, however many
    # references it checks: few large queries, not many small ones.
    for chunk in _chunks(list(dict.fromkeys(refs)), REF_CHUNK):
        values = ", ".join([f"({d.p})"] * len(chunk))
        used.update(ref for (ref,) in conn.execute(
            f"WITH checked(ref) AS (VALUES {values}) "
            "SELECT result_ref FROM steps WHERE result_ref IN (SELECT ref FROM checked) "
            "UNION SELECT result_ref FROM runs WHERE result_ref IN (SELECT ref FROM checked) "
            "UNION SELECT result_ref FROM cache WHERE result_ref IN (SELECT ref FROM checked)",
            chunk).fetchall())
    return sorted(used)
