"""The one place requests are checked against their principal: `guard(store, principal)`.

Every store verb a request reaches (through POST /api/v1/store/{verb} or a REST route) goes
through `Access.check` first, and its answer through `Access.after`:
- the principal's role must grant the verb's permission (server/policy.py);
- every id it names, nested ones included (a run's parent and deployment, the run of a step, a
  log line or a cache entry), must be in the principal's namespaces; something in another
  namespace is "not found", so its existence does not leak;
- a worker key writes only runs it holds: the fence must be a lease of a worker registered
  with this key, and every record written under it must belong to that run's tree; it cannot
  create runs that point at code (only child runs under a lease it holds), move runs it does
  not hold, or claim from queues its key does not name;
- fields that say who made something are set here, never taken from the caller: a run's
  `created_by`, a worker's `key_id`.

Checks that need the database (who holds a lease, which tree a run is in) are cached per key:
the per-step cost of a worker's writes is a few dictionary lookups (bench/server.py).
"""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from stead.errors import AccessDenied, DeploymentNotFound, RunNotFound
from stead.server.policy import (
    HOOK_VERBS,
    VERB_PERMISSION,
    WORKER_READS,
    Permission,
    Principal,
)
from stead.store.base import Fence, RunFilter, RunRecord, Store
from stead.store.waits import INPUT_TOPIC
from stead.store.wire import PARTS

CACHE_MAX = 20_000  # remembered (key, run, epoch) leases and run namespaces, per server
# Verbs checked by the argument that names their run, or their deployment; verbs that
# change what every namespace shares (a key of all namespaces only), with what they do.
RUN_VERBS = {"get_run": "run_id", "run_history": "run_id", "load_steps": "run_id",
             "get_step": "run_id", "read_logs": "run_id", "cancel_run": "run_id",
             "requeue_run": "run_id"}
DEPLOYMENT_VERBS = {"get_deployment": "name", "set_schedules": "deployment",
                    "set_schedule_active": "deployment"}
SHARED_VERBS = {"set_queue": "change queues", "set_limit": "change tag limits",
                "delete_limit": "change tag limits", "promote_due_runs": "run the scheduler",
                "mark_late_runs": "run the scheduler", "advance_schedule": "run the scheduler",
                "skip_missed_runs": "run the scheduler"}
PENDING_STATES = frozenset({"Pending", "Scheduled", "Late"})
# Verbs checked by the namespace they name (store/variables.py): one of the principal's.
NAMESPACE_VERBS = {"get_variable": "read variables", "set_variable": "change variables",
                   "delete_variable": "change variables"}


class _Lru(OrderedDict[Any, Any]):
    def remember(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > CACHE_MAX:
            self.popitem(last=False)
        return value


class Access:
    """The checks of one server (it keeps their caches). See the module's docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._signatures: dict[str, inspect.Signature] = {}
        self._held = _Lru()  # (key id, run id, epoch) -> True
        self._namespace = _Lru()  # run id -> its namespace (it never changes)
        self._trees = _Lru()  # (run id of a fence, run id) -> True: run is in fence's tree

    # -- the entry points -------------------------------------------------------------
    def permit(self, principal: Principal, verb: str) -> bool:
        """Refuse (AccessDenied) a verb the principal's role may not call at all; True if
        it may call it only within limits (a worker reading the runs it executes)."""
        needed = VERB_PERMISSION.get(verb)
        if needed is None:
            raise AccessDenied(f"the store verb {verb!r} is not open to API keys")
        limited = not principal.may(needed)
        if limited and verb in HOOK_VERBS and principal.may(Permission.HOOK):
            return True  # a webhook key sending a message (checked in _check_send_message)
        if limited and not (needed is Permission.READ and verb in WORKER_READS
                            and principal.may(Permission.EXECUTE)):
            raise AccessDenied(f"{_who(principal)} may not call {verb}: the {principal.role} "
                               f"role lacks the {needed.value!r} permission; use a key whose "
                               "role has it (docs/security.md lists what each role may)")
        return limited

    def check(self, principal: Principal, verb: str, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> dict[str, Any]:
        """Refuse the call (AccessDenied, or RunNotFound for a foreign run) or return its
        arguments by name, with the fields the server owns filled in."""
        limited = self.permit(principal, verb)
        call = self._bind(verb, args, kwargs)
        handler = getattr(self, f"_check_{verb}", None)
        if handler is not None:
            handler(principal, call)
        elif verb in RUN_VERBS:
            self._run_visible(principal, call[RUN_VERBS[verb]])
            if limited:  # a worker reads only the runs it executes
                self._executing(principal, call[RUN_VERBS[verb]])
        elif verb in DEPLOYMENT_VERBS:
            self._deployment_visible(principal, call[DEPLOYMENT_VERBS[verb]])
        elif verb in NAMESPACE_VERBS and not principal.sees(call["namespace"]):
            raise AccessDenied(f"{_who(principal)} may not {NAMESPACE_VERBS[verb]} of "
                               f"namespace {call['namespace']!r}")
        elif verb in SHARED_VERBS and "*" not in principal.namespaces:
            raise AccessDenied(f"{_who(principal)} may not {SHARED_VERBS[verb]}: that changes "
                               "every namespace, so it needs a key of all namespaces "
                               "(`stead keys create NAME --role operator --namespace '*'`)")
        return call

    def after(self, principal: Principal, verb: str, call: dict[str, Any], result: Any) -> Any:
        """The answer as the principal may see it (listings cut to its namespaces)."""
        if verb == "expired_runs" and principal.queues is not None:
            result = [r for r in result if principal.serves(r.queue)]
        if verb == "list_runs" and not principal.may(Permission.READ):
            # A worker finds the runs its dead predecessors held (worker/recovery.py): the
            # enqueued runs of its queues, which it could claim anyway.
            result = [r for r in result if r.queue is not None and principal.serves(r.queue)]
        if "*" in principal.namespaces:
            return result
        if verb == "list_deployments":
            return [d for d in result if principal.sees(d.namespace)]
        if verb in ("list_secrets", "list_variables"):
            return [s for s in result if principal.sees(s.namespace)]
        if verb == "list_schedules" and call.get("deployment") is None:
            mine = {d.name for d in self.store.list_deployments() if principal.sees(d.namespace)}
            return [s for s in result if s.deployment in mine]
        if verb == "resolve_run_id":
            self._run_visible(principal, result)
        if verb == "expired_runs":
            return [r for r in result if principal.sees(r.namespace)]
        if verb == "create_run":
            run, _ = result
            if not principal.sees(run.namespace):  # an existing run of another namespace
                raise RunNotFound(f"no run {run.id!r}")
        return result

    # -- runs ------------------------------------------------------------------------------
    def _run_namespace(self, run_id: str) -> str:
        known = self._namespace.get(run_id)
        if known is not None:
            return known  # type: ignore[no-any-return]
        run = self.store.get_run(run_id)  # RunNotFound: nothing to hide
        return self._namespace.remember(run_id, run.namespace)  # type: ignore[no-any-return]

    def _run_visible(self, principal: Principal, run_id: str) -> None:
        if "*" in principal.namespaces:
            return
        if not principal.sees(self._run_namespace(run_id)):
            raise RunNotFound(f"no run {run_id!r}")

    def _check_list_runs(self, principal: Principal, call: dict[str, Any]) -> None:
        flt: RunFilter = call["flt"]
        if "*" not in principal.namespaces:
            wanted = principal.namespaces if flt.namespaces is None else tuple(
                n for n in flt.namespaces if principal.sees(n))
            call["flt"] = replace(flt, namespaces=wanted)

    def _check_count_steps(self, principal: Principal, call: dict[str, Any]) -> None:
        for run_id in call["run_ids"]:
            self._run_visible(principal, run_id)

    def _check_create_run(self, principal: Principal, call: dict[str, Any]) -> None:
        run: RunRecord = call["run"]
        fence: Fence | None = call.get("fence")
        if not principal.sees(run.namespace):
            raise AccessDenied(f"{_who(principal)} may not create runs in namespace "
                               f"{run.namespace!r}")
        if run.parent_id is not None:  # a child run lives in its parent's namespace
            self._run_visible(principal, run.parent_id)
            if self._run_namespace(run.parent_id) != run.namespace:
                raise AccessDenied(f"run {run.id!r} must be in the namespace of its parent "
                                   f"run {run.parent_id!r}")
        if run.deployment is not None:
            self._deployment_visible(principal, run.deployment)
        if not principal.may(Permission.OPERATE):
            # A worker creates only the child runs of a run it executes: never a run for a
            # worker to claim, so never code of its choosing for another worker to execute.
            if fence is None or run.parent_id is None:
                raise AccessDenied(f"{_who(principal)} may create only child runs of a run it "
                                   "executes; enqueueing runs needs an operator key")
            if run.queue is not None or run.state in PENDING_STATES:
                raise AccessDenied(f"{_who(principal)} may not enqueue runs (run {run.id!r} "
                                   f"is {run.state} on queue {run.queue!r})")
            self._holds(principal, fence)
            self._in_tree(fence, run.parent_id)
        call["run"] = replace(run, created_by=_creator(principal))

    def _check_transition_run(self, principal: Principal, call: dict[str, Any]) -> None:
        run: RunRecord = call["run"]
        self._run_visible(principal, run.id)
        if principal.may(Permission.OPERATE):
            return
        fence = call.get("fence")
        if fence is None or call.get("take_over"):
            raise AccessDenied(f"{_who(principal)} may change only runs it holds the lease of")
        self._holds(principal, fence)
        self._in_tree(fence, run.id)

    def _check_recover_run(self, principal: Principal, call: dict[str, Any]) -> None:
        run = self.store.get_run(call["run_id"])
        if not principal.sees(run.namespace):
            raise RunNotFound(f"no run {run.id!r}")
        if principal.may(Permission.OPERATE):
            return
        if not principal.serves(run.queue):
            raise AccessDenied(f"{_who(principal)} may recover only runs of its queues "
                               f"({', '.join(principal.queues or ())})")
        lapsed = run.lease_expires_at is not None and run.lease_expires_at < time.time()
        if not lapsed and not self._holding(principal, Fence(run.id, run.lease_epoch)):
            raise AccessDenied(f"{_who(principal)} may recover only runs whose lease lapsed "
                               f"or that it holds; run {run.id!r} is leased by another worker")

    def _executing(self, principal: Principal, run_id: str) -> None:
        """Refuse unless a worker of this key holds the lease of the run's tree."""
        run = self.store.get_run(run_id)
        for _ in range(64):
            if run.parent_id is None:
                break
            run = self.store.get_run(run.parent_id)
        self._holds(principal, Fence(run.id, run.lease_epoch))

    def _check_finish_cancel(self, principal: Principal, call: dict[str, Any]) -> None:
        run = self.store.get_run(call["run_id"])
        if not principal.sees(run.namespace):
            raise RunNotFound(f"no run {run.id!r}")
        if not principal.may(Permission.OPERATE):
            self._holds(principal, Fence(run.id, run.lease_epoch))

    # -- steps, logs, cache: written under a fence ------------------------------------------
    def _fenced(self, principal: Principal, call: dict[str, Any], run_ids: set[str]) -> None:
        fence: Fence | None = call.get("fence")
        for run_id in run_ids:
            self._run_visible(principal, run_id)
        if principal.may(Permission.OPERATE):
            return
        if fence is None:
            raise AccessDenied(f"{_who(principal)} may write only the runs it holds the lease "
                               "of: the call carries no fence")
        self._holds(principal, fence)
        for run_id in run_ids:
            self._in_tree(fence, run_id)

    def _check_record_step(self, principal: Principal, call: dict[str, Any]) -> None:
        runs = {call["step"].run_id} | {g.run_id for g in call.get("logs") or ()}
        self._fenced(principal, call, runs)

    def _check_record_steps(self, principal: Principal, call: dict[str, Any]) -> None:
        runs = {s.run_id for s, _ in call["batch"]}
        runs |= {g.run_id for _, logs in call["batch"] for g in logs or ()}
        self._fenced(principal, call, runs)

    def _check_mark_steps_running(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {s.run_id for s in call["steps"]})

    def _check_append_logs(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {g.run_id for g in call["logs"]})

    def _check_write_cache(self, principal: Principal, call: dict[str, Any]) -> None:
        self._run_visible(principal, call["entry"].run_id)

    # -- waits and messages (store/waits.py) -------------------------------------------------
    def _check_send_message(self, principal: Principal, call: dict[str, Any]) -> None:
        self._run_visible(principal, call["run_id"])
        if call["topic"] == INPUT_TOPIC and not principal.may(Permission.OPERATE):
            raise AccessDenied(f"{_who(principal)} may not answer a run's wait for input: "
                               "that needs an operator key")
        if principal.key_id is not None:  # who sent it is the server's to say
            call["sender"] = _creator(principal)

    def _own_run(self, principal: Principal, run_id: str) -> None:
        """A run the principal sees and, for a worker, one of a tree it executes."""
        self._run_visible(principal, run_id)
        if not principal.may(Permission.OPERATE) and not principal.may(Permission.READ):
            self._executing(principal, run_id)

    def _check_next_message(self, principal: Principal, call: dict[str, Any]) -> None:
        self._own_run(principal, call["run_id"])

    def _check_list_messages(self, principal: Principal, call: dict[str, Any]) -> None:
        self._own_run(principal, call["run_id"])

    def _check_get_wait(self, principal: Principal, call: dict[str, Any]) -> None:
        self._own_run(principal, call["run_id"])

    def _check_list_waits(self, principal: Principal, call: dict[str, Any]) -> None:
        for run_id in call["run_ids"]:
            self._run_visible(principal, run_id)

    def _check_get_status(self, principal: Principal, call: dict[str, Any]) -> None:
        self._run_visible(principal, call["run_id"])  # published: any run it may see

    def _check_get_message(self, principal: Principal, call: dict[str, Any]) -> None:
        msg = self.store.get_message(call["message_id"])
        self._run_visible(principal, msg.run_id)
        # A worker reads its own runs' messages, and the replies to the requests it sent.
        if msg.sender is None or msg.sender != _creator(principal):
            self._own_run(principal, msg.run_id)

    def _check_consume_message(self, principal: Principal, call: dict[str, Any]) -> None:
        # The store refuses a message of another run than the step's.
        self._fenced(principal, call, {call["step"].run_id})

    def _check_reject_message(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {self.store.get_message(call["message_id"]).run_id})

    def _check_reply_message(self, principal: Principal, call: dict[str, Any]) -> None:
        self._check_reject_message(principal, call)

    def _check_record_wait(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {call["wait"].run_id})

    def _check_clear_wait(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {call["run_id"]})

    def _check_park_run(self, principal: Principal, call: dict[str, Any]) -> None:
        self._fenced(principal, call, {call["run"].id, call["wait"].run_id})

    def _check_set_status(self, principal: Principal, call: dict[str, Any]) -> None:
        step = call.get("step")
        self._fenced(principal, call, {call["status"].run_id} | (
            {step.run_id} if step is not None else set()))

    def _check_notify_finished(self, principal: Principal, call: dict[str, Any]) -> None:
        self._run_visible(principal, call["run_id"])  # the store wakes only for a finished run

    # -- secrets ---------------------------------------------------------------------------
    def _check_reveal_secret(self, principal: Principal, call: dict[str, Any]) -> None:
        if not principal.sees(call["namespace"]):
            raise AccessDenied(f"{_who(principal)} may not read secrets of namespace "
                               f"{call['namespace']!r}")

    def _check_list_secrets(self, principal: Principal, call: dict[str, Any]) -> None:
        if call.get("namespace") is not None:  # else after() keeps only its namespaces'
            self._check_reveal_secret(principal, {"namespace": call["namespace"]})

    def _check_list_variables(self, principal: Principal, call: dict[str, Any]) -> None:
        namespace = call.get("namespace")
        if namespace is None and len(principal.namespaces) == 1 and principal.namespaces != (
                "*",):  # its one namespace, so a `limit` counts only what it may see
            call["namespace"] = principal.namespaces[0]
        elif namespace is not None and not principal.sees(namespace):  # else: after() cuts
            raise AccessDenied(f"{_who(principal)} may not read variables of namespace "
                               f"{namespace!r}")

    # -- workers and queues ------------------------------------------------------------------
    def _check_claim_runs(self, principal: Principal, call: dict[str, Any]) -> None:
        foreign = [q for q in call["queues"] if not principal.serves(q)]
        if foreign:
            raise AccessDenied(f"{_who(principal)} may not claim from queue {foreign[0]!r}; "
                               f"its queues: {', '.join(principal.queues or ())}")
        call["worker"] = replace(call["worker"], key_id=principal.key_id)
        if "*" not in principal.namespaces:
            call["namespaces"] = list(principal.namespaces)

    def _check_register_worker(self, principal: Principal, call: dict[str, Any]) -> None:
        call["worker"] = replace(call["worker"], key_id=principal.key_id)

    def _check_heartbeat(self, principal: Principal, call: dict[str, Any]) -> None:
        call["worker"] = replace(call["worker"], key_id=principal.key_id)
        if not principal.may(Permission.OPERATE):  # renew only leases of its own workers
            call["held"] = [f for f in call["held"] if self._holding(principal, f)]

    # -- deployments -------------------------------------------------------------------------
    def _deployment_visible(self, principal: Principal, name: str) -> None:
        if "*" in principal.namespaces:
            return
        if not principal.sees(self.store.get_deployment(name).namespace):
            raise DeploymentNotFound(f"no deployment {name!r}; `stead deployments ls` lists "
                                     "the deployments")

    def _check_list_schedules(self, principal: Principal, call: dict[str, Any]) -> None:
        if call.get("deployment") is not None:
            self._deployment_visible(principal, call["deployment"])

    def _check_save_deployment(self, principal: Principal, call: dict[str, Any]) -> None:
        dep = call["deployment"]
        if not principal.sees(dep.namespace):
            raise AccessDenied(f"{_who(principal)} may not deploy in namespace "
                               f"{dep.namespace!r}")

    # -- leases and trees --------------------------------------------------------------------
    def _holding(self, principal: Principal, fence: Fence) -> bool:
        key = (principal.key_id, fence.run_id, fence.epoch)
        if key in self._held:
            return True
        holder = self.store.lease_holder_key(fence.run_id, fence.epoch)
        if holder is None or holder != principal.key_id:
            return False
        self._held.remember(key, True)
        return True

    def _holds(self, principal: Principal, fence: Fence) -> None:
        if not self._holding(principal, fence):
            raise AccessDenied(f"{_who(principal)} does not hold the lease of run "
                               f"{fence.run_id!r} (epoch {fence.epoch})")

    def _in_tree(self, fence: Fence, run_id: str) -> None:
        """Refuse unless `run_id` is the fence's run or one of its descendants."""
        if run_id == fence.run_id or (fence.run_id, run_id) in self._trees:
            return
        current, seen = run_id, 0
        while current is not None and seen < 64:
            if current == fence.run_id:
                self._trees.remember((fence.run_id, run_id), True)
                return
            try:
                current = self.store.get_run(current).parent_id
            except RunNotFound:
                break
            seen += 1
        raise AccessDenied(f"run {run_id!r} is not part of run {fence.run_id!r}, whose lease "
                           "the call carries")

    def _bind(self, verb: str, args: tuple[Any, ...], kwargs: dict[str, Any]
              ) -> dict[str, Any]:
        sig = self._signatures.get(verb)
        if sig is None:
            part = next(p for p in PARTS if verb in vars(p))
            sig = self._signatures[verb] = inspect.signature(getattr(part, verb))
        try:
            bound = sig.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{verb}: {exc}") from None
        call = dict(bound.arguments)
        call.pop("self", None)
        return call


def _who(principal: Principal) -> str:
    return f"the {principal.role} key {principal.name!r}"


def _creator(principal: Principal) -> str | None:
    return None if principal.key_id is None else f"{principal.role}:{principal.key_id}"


class Guarded:
    """A store whose every verb is checked against `principal` first (see Access).

    Example:
        >>> store = Guarded(sqlite_store, reader_principal, Access(sqlite_store))
        >>> store.cancel_run(run_id, now, "no")   # AccessDenied: readers may not cancel
    """

    def __init__(self, store: Store, principal: Principal, access: Access) -> None:
        self._store, self._principal, self._access = store, principal, access
        self.url = store.url

    def permit(self, verb: str) -> None:
        """Refuse (AccessDenied) a verb this principal may never call, before its
        arguments are even read."""
        self._access.permit(self._principal, verb)

    def __getattr__(self, verb: str) -> Any:
        method = getattr(self._store, verb)
        if not callable(method):
            return method
        principal, access = self._principal, self._access

        def checked(*args: Any, **kwargs: Any) -> Any:
            call = access.check(principal, verb, args, kwargs)
            return access.after(principal, verb, call, method(**call))

        return checked


def guard(store: Store, principal: Principal, access: Access) -> Store:
    """`store` as `principal` may use it: itself for the local user, else a Guarded store."""
    if principal.role == "admin" and "*" in principal.namespaces:
        return store
    return Guarded(store, principal, access)  # type: ignore[return-value]
