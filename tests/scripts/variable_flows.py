"""Flows that read and write variables, executed by workers in tests/worker/test_variables_worker.py
(imported by module name, `variable_flows`)."""

from stead import Variable, flow
from stead.errors import AccessDenied


@flow
def configured() -> dict:
    size = Variable.get("batch_size", default=1)
    try:
        Variable.set("touched_by_worker", True)
        wrote = "yes"
    except AccessDenied:
        wrote = "refused"
    return {"size": size, "wrote": wrote}
