"""Finding the flow function of a recorded run, so a process other than the original can resume it.

A run records its flow's entrypoint ("module:qualname") and, when the flow was defined in a
script run as ``__main__``, the script's path. `load_flow` imports that module or script and
returns the `Flow` object it defines; `load_entrypoint` does the same for a deployment's
"file.py:function".

Loading never starts a run. A script is imported under another name than ``__main__`` (so
its ``if __name__ == "__main__":`` block does not run), and a script written without that
guard, whose last line calls the flow, does not start a second run either: while the loader
imports code, a flow call (or ``enqueue``, ``resume``) stops the import right there
(`ModuleLevelFlowCall`) and the loader keeps the module as it was at that point — every
function and flow defined above the call, which is what the original run itself saw when
that line started it. Module code after the first flow call does not run. So:

    # nightly.py, no guard            stead runs resume RUN_ID
    @flow                             # imports nightly.py up to nightly(...), which does
    def nightly(day: str) -> int: ... # not run; then resumes RUN_ID with the loaded flow
    nightly("2026-11-21")
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from stead.core.flow import LOADING, Flow, ModuleLevelFlowCall
from stead.core.serialization import register_module_alias
from stead.errors import FlowNotLoadable
from stead.store.base import RunRecord

SCRIPT_MODULE = "__stead_main__"


def load_flow(run: RunRecord) -> Flow[Any, Any]:
    """The `Flow` that ran `run`, imported from its recorded module or script.

    Raises FlowNotLoadable when the script is gone, the module cannot be imported, the name
    is not found or is not a flow, or the flow was defined inside a function.
    """
    module_name, _, qualname = run.entrypoint.partition(":")
    what = f"flow '{run.flow_name}' of run {run.id}"
    if not module_name or not qualname:
        raise FlowNotLoadable(f"{what} has no recorded entrypoint ({run.entrypoint!r}); "
                              "call flow.resume(run_id) from Python instead")
    if "<locals>" in qualname:
        raise FlowNotLoadable(
            f"{what} was defined inside a function ({run.entrypoint}); flows defined inside "
            "functions cannot be resumed from the CLI. Call flow.resume(run_id) from Python.")
    if run.script_path:
        module = _import_script(Path(run.script_path), what)
        where = str(run.script_path)
    elif module_name == "__main__":
        raise FlowNotLoadable(
            f"{what} was defined in an interactive session (module __main__ without a file); "
            "it cannot be resumed from the CLI. Call flow.resume(run_id) from Python.")
    else:
        module = _import_module(module_name, what)
        where = f"module {module_name}"
    obj: Any = module
    for part in qualname.split("."):
        owner = obj
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FlowNotLoadable(
                f"{what}: {where} has no {qualname!r} (the entrypoint was {run.entrypoint})"
                f"{_stopped_note(module)}. Was the flow renamed or moved? Restore it, or call "
                "flow.resume(run_id) from Python.") from None
    _refuse_instance_method(owner, qualname, what)
    if not isinstance(obj, Flow):
        raise FlowNotLoadable(
            f"{what}: {qualname} in {where} is {type(obj).__name__}, not a stead flow "
            "(is it still decorated with @flow?)")
    return obj


def _refuse_instance_method(owner: Any, qualname: str, what: str) -> None:
    """A flow that is an instance method needs its `self`, which the store does not hold."""
    from stead.core.methods import needs_instance

    attribute = qualname.rpartition(".")[2]
    if needs_instance(owner, attribute):
        raise FlowNotLoadable(
            f"{what} is the method {qualname} of {owner.__name__} instances; its self "
            "cannot be rebuilt from the store, so a worker or `stead runs resume` cannot run "
            f"it. Resume it from Python on the instance (obj.{attribute}.resume(run_id)), or "
            "make it a @classmethod or @staticmethod.")


def _import_script(path: Path, what: str) -> ModuleType:
    if not path.is_file():
        raise FlowNotLoadable(
            f"{what} was defined in the script {path}, which no longer exists. Restore the "
            "file, or call flow.resume(run_id) from Python.")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise FlowNotLoadable(f"{what}: cannot import {path} as Python source")
    module = importlib.util.module_from_spec(spec)
    # Registered before running the script: classes it defines are recorded as "__main__:...".
    sys.modules[SCRIPT_MODULE] = module
    register_module_alias("__main__", module)
    try:
        _exec_without_runs(spec, module)
    except (Exception, SystemExit) as exc:  # a script that exits on import (argparse) too
        sys.modules.pop(SCRIPT_MODULE, None)
        raise FlowNotLoadable(
            f"{what}: importing the script {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _exec_without_runs(spec: importlib.machinery.ModuleSpec, module: ModuleType) -> None:
    """Run the module's code; a flow call at module level ends it there (see the docstring)."""
    assert spec.loader is not None
    token = LOADING.set(True)
    try:
        spec.loader.exec_module(module)
    except ModuleLevelFlowCall as stop:
        module.__dict__["__stead_stopped_at__"] = _where(stop, module)
    finally:
        LOADING.reset(token)


def _where(stop: ModuleLevelFlowCall, module: ModuleType) -> str:
    """What stopped the import, e.g. "a call of flow 'nightly' at module level (line 12)"."""
    line = None
    tb = stop.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals is module.__dict__:
            line = tb.tb_lineno
        tb = tb.tb_next
    return str(stop) + (f" (line {line})" if line else "")


def _stopped_note(module: ModuleType) -> str:
    stopped = module.__dict__.get("__stead_stopped_at__")
    if not stopped:
        return ""
    return (f"; loading it stopped at {stopped}, which does not start a run while Stead "
            "loads code: define the flow above that line, or put the call under "
            "`if __name__ == \"__main__\":`")


def _import_module(name: str, what: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return _import_without_runs(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise FlowNotLoadable(
                f"{what}: module {name!r} is not importable from {cwd}. Run stead from the "
                "project folder (or install the project) so the flow's module can be "
                "imported.") from exc
        raise FlowNotLoadable(f"{what}: importing module {name!r} failed: "
                              f"ModuleNotFoundError: {exc}") from exc
    except Exception as exc:
        raise FlowNotLoadable(
            f"{what}: importing module {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _import_without_runs(name: str) -> ModuleType:
    """`importlib.import_module`, except that a flow call in the module's own top-level code
    ends its import there and the module is kept (imports it makes are ordinary imports)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)  # imports the parent packages
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        _exec_without_runs(spec, module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def load_entrypoint(spec: str) -> Flow[Any, Any]:
    """The flow named by "path/to/file.py:function" or "package.module:function".

    Example:
        >>> load_entrypoint("flows/etl.py:nightly")
        <Flow nightly>
    """
    where, sep, qualname = spec.rpartition(":")
    if not sep or not where or not qualname:
        raise FlowNotLoadable(f"entrypoint {spec!r}: write FILE.py:FUNCTION or "
                              "MODULE:FUNCTION, e.g. flows/etl.py:nightly")
    what = f"entrypoint {spec!r}"
    if where.endswith(".py") or "/" in where or os.sep in where:
        path = Path(where).expanduser().absolute()
        module = _import_script(path, what)
    else:
        module = _import_module(where, what)
    obj: Any = module
    for part in qualname.split("."):
        owner = obj
        obj = getattr(obj, part, None)
        if obj is None:
            raise FlowNotLoadable(f"{what}: {where} has no {qualname!r}{_stopped_note(module)}")
    _refuse_instance_method(owner, qualname, what)
    if not isinstance(obj, Flow):
        raise FlowNotLoadable(f"{what}: {qualname} is {type(obj).__name__}, not a stead flow "
                              "(decorate it with @flow)")
    return obj
