"""Which code a worker agrees to import: checked before anything of the run is loaded.

A worker executes only
- the entrypoint of the deployment version a run was created from (the run's entrypoint and
  script must be that version's), or
- a flow enqueued where the database is (no API key) or with an operator or admin key.
A run whose `created_by` names any other role (a worker, reader or webhook key: the server
stamps it, the caller cannot) is refused. So a stolen worker key cannot make other workers
run a file of its choosing.
"""

from __future__ import annotations

from stead.errors import DeploymentNotFound, FlowNotLoadable
from stead.store.base import RunRecord, Store

TRUSTED_CREATORS = ("operator", "admin")


def check_entrypoint(store: Store, run: RunRecord) -> None:
    """Raise FlowNotLoadable unless a worker may import run's code (see the module).

    Example:
        >>> check_entrypoint(store, run)   # before load_flow(run)
    """
    if run.deployment is not None:
        try:
            dep = store.get_deployment(run.deployment, run.deployment_version)
        except DeploymentNotFound:
            raise FlowNotLoadable(
                f"run {run.id} names deployment {run.deployment!r} version "
                f"{run.deployment_version}, which does not exist; the worker does not import "
                "code no deployment names") from None
        if (dep.entrypoint, dep.script_path) != (run.entrypoint, run.script_path):
            raise FlowNotLoadable(
                f"run {run.id} points at {run.entrypoint} ({run.script_path or 'a module'}), "
                f"not at the entrypoint of deployment {dep.name} v{dep.version} "
                f"({dep.entrypoint}); the worker refused to import it")
        return
    role = (run.created_by or "").partition(":")[0]
    if run.created_by is not None and role not in TRUSTED_CREATORS:
        raise FlowNotLoadable(
            f"run {run.id} was created with a {role} API key, which may not enqueue code; "
            "the worker refused to import it (enqueue with an operator key, or deploy it)")
