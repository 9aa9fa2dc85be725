"""Who may do what: roles, their permissions, and the permission every store verb needs.

A request's principal is the API key it carried (or, on a keyless loopback server, the local
user, who may do everything). A key has one role:

- `admin`: everything, keys included.
- `operator`: deploy, create and cancel runs, send them messages and input, change queues,
  limits, schedules and variables;
  also what a worker does (an operator can already enqueue code, so executing it grants
  nothing more).
- `worker`: only what executing runs needs: claim from its queues, heartbeat, and record the
  steps, logs and transitions of runs it holds the lease of (server/fencing.py checks that);
  read the variables of its namespaces (a flow's configuration), never write them; receive,
  reply, wait, park and publish status for runs it holds, send messages to runs of its
  namespaces and read their published status.
- `reader`: read runs, steps, logs, deployments, queues, workers, limits, variables, and
  runs' messages, waits and published status.
- `webhook`: post to its own hook, and send messages to runs of its namespaces (an inbound
  webhook's event for a flow waiting in `stead.receive`): not input, and nothing to read.

The table below is the whole policy for the store verbs (POST /api/v1/store/{verb}); REST
routes name their permission with `Allow(...)` (server/auth.py). A verb missing from the table
is refused: a new verb is closed until someone decides who may call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    READ = "read"  # look at runs, steps, logs, deployments, queues, workers, limits
    EXECUTE = "execute"  # claim runs and record their progress (a worker)
    OPERATE = "operate"  # create, cancel and requeue runs; deploy; queues, limits, schedules
    ADMIN = "admin"  # API keys, secrets, the audit log
    HOOK = "hook"  # post to a webhook


ROLES: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "operator": frozenset({Permission.READ, Permission.EXECUTE, Permission.OPERATE}),
    "worker": frozenset({Permission.EXECUTE}),
    "reader": frozenset({Permission.READ}),
    "webhook": frozenset({Permission.HOOK}),
}
ROLE_NAMES = tuple(ROLES)
DEFAULT_NAMESPACE = "default"

# Reads a worker needs for the runs it executes; checked against the runs it holds where the
# verb names a run (server/fencing.py).
WORKER_READS = frozenset({"get_run", "load_steps", "get_step", "read_cache", "get_deployment",
                          "list_limits", "runs_to_cancel", "expired_runs", "run_history",
                          "list_runs",  # list_runs: only enqueued runs of its queues
                          # variables: a flow's configuration, read in its namespaces
                          "get_variable", "list_variables",
                          # waits and messages: a flow's own messages and wait, the replies
                          # to requests it sent, and any run's published status
                          "get_message", "list_messages", "get_wait", "get_status"})

# Verbs the webhook role may call besides its hook (server/access.py refuses input).
HOOK_VERBS = frozenset({"send_message"})

VERB_PERMISSION: dict[str, Permission] = {
    # reading
    "get_run": Permission.READ, "list_runs": Permission.READ,
    "resolve_run_id": Permission.READ, "run_history": Permission.READ,
    "load_steps": Permission.READ, "get_step": Permission.READ,
    "count_steps": Permission.READ, "read_logs": Permission.READ,
    "read_cache": Permission.READ, "list_queues": Permission.READ,
    "list_workers": Permission.READ, "list_limits": Permission.READ,
    "get_deployment": Permission.READ, "list_deployments": Permission.READ,
    "list_schedules": Permission.READ, "list_secrets": Permission.READ,
    "get_variable": Permission.READ, "list_variables": Permission.READ,
    "get_message": Permission.READ, "list_messages": Permission.READ,
    "get_wait": Permission.READ, "list_waits": Permission.READ,
    "get_status": Permission.READ,
    # executing claimed runs (the fenced writes are checked against the caller's leases)
    "claim_runs": Permission.EXECUTE, "heartbeat": Permission.EXECUTE,
    "register_worker": Permission.EXECUTE, "record_step": Permission.EXECUTE,
    "record_steps": Permission.EXECUTE, "mark_steps_running": Permission.EXECUTE,
    "append_logs": Permission.EXECUTE, "transition_run": Permission.EXECUTE,
    "write_cache": Permission.EXECUTE, "take_slots": Permission.EXECUTE,
    "renew_slots": Permission.EXECUTE, "release_slots": Permission.EXECUTE,
    "finish_cancel": Permission.EXECUTE, "recover_run": Permission.EXECUTE,
    "expired_runs": Permission.EXECUTE, "runs_to_cancel": Permission.EXECUTE,
    "create_run": Permission.EXECUTE,  # a child run under a held lease; else OPERATE
    "reveal_secret": Permission.EXECUTE,  # a flow reading stead.secret() through the server
    # durable waits: a flow receiving, replying, waiting, parking and publishing its status
    # (fenced, of runs it holds); waking parked runs whose time or child has come
    "next_message": Permission.EXECUTE, "consume_message": Permission.EXECUTE,
    "reject_message": Permission.EXECUTE, "reply_message": Permission.EXECUTE,
    "record_wait": Permission.EXECUTE, "clear_wait": Permission.EXECUTE,
    "park_run": Permission.EXECUTE, "wake_due_runs": Permission.EXECUTE,
    "notify_finished": Permission.EXECUTE, "set_status": Permission.EXECUTE,
    # a message to a run of its namespaces: from a flow (a worker) or a person (an
    # operator); input (stead.input topic) needs OPERATE (server/access.py)
    "send_message": Permission.EXECUTE,
    # operating
    "cancel_run": Permission.OPERATE, "requeue_run": Permission.OPERATE,
    "save_deployment": Permission.OPERATE, "set_schedules": Permission.OPERATE,
    "set_schedule_active": Permission.OPERATE, "advance_schedule": Permission.OPERATE,
    "promote_due_runs": Permission.OPERATE, "mark_late_runs": Permission.OPERATE,
    "skip_missed_runs": Permission.OPERATE,
    "set_queue": Permission.OPERATE, "set_limit": Permission.OPERATE,
    "delete_limit": Permission.OPERATE,
    "set_variable": Permission.OPERATE, "delete_variable": Permission.OPERATE,
}
# Verbs that change nothing: the audit log leaves them out.
READ_VERBS = frozenset(v for v, p in VERB_PERMISSION.items() if p is Permission.READ) | {
    "expired_runs", "runs_to_cancel", "next_message"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: an API key (its id, name, role, namespaces and queues), or the
    local user of a keyless loopback server (key_id None, role admin).

    Example:
        >>> Principal("k1", "etl-worker", "worker", ("team-a",), ("etl",)).may(Permission.READ)
        False
    """

    key_id: str | None
    name: str
    role: str
    namespaces: tuple[str, ...] = (DEFAULT_NAMESPACE,)  # ("*",): every namespace
    queues: tuple[str, ...] | None = None  # a worker key's queues; None: any queue

    def may(self, permission: Permission) -> bool:
        return permission in ROLES.get(self.role, frozenset())

    def sees(self, namespace: str | None) -> bool:
        """Whether this principal may touch something in `namespace`."""
        return "*" in self.namespaces or (namespace or DEFAULT_NAMESPACE) in self.namespaces

    def serves(self, queue: str | None) -> bool:
        """Whether a worker key may claim from (or recover runs of) `queue`."""
        return self.queues is None or queue in self.queues


LOCAL = Principal(None, "local", "admin", ("*",), None)
"""The principal of a keyless loopback server's requests that carry no key."""
