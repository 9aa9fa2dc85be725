"""An unstorable value gets the advice that fits where it was: pickle is a task option only."""

from __future__ import annotations

import json
import threading

import pytest

from stead import flow, task
from stead.errors import ParameterError, SerializationError
from stead.store.base import RunFilter


@flow
def takes_lock(lock: object) -> None:
    return None


def test_an_unstorable_flow_parameter_is_not_told_to_use_pickle(store) -> None:
    with pytest.raises(ParameterError) as caught:
        takes_lock(threading.Lock())
    message = str(caught.value)
    assert "flow 'takes_lock': parameter 'lock' cannot be recorded" in message
    assert "_thread.lock cannot be stored" in message
    assert "pass what identifies a connection, client or file" in message
    assert "Pickle does not apply to flow parameters" in message
    assert "serializer='pickle')" not in message
    assert store.list_runs(RunFilter()) == []


def test_an_unstorable_enqueued_parameter_is_not_told_to_use_pickle(store) -> None:
    with pytest.raises(ParameterError) as caught:
        takes_lock.enqueue(threading.Lock(), queue="q")
    assert "Pickle does not apply to flow parameters" in str(caught.value)
    assert "opt in to pickle" not in str(caught.value)


def test_an_unstorable_flow_result_is_told_pickle_is_a_task_option(store) -> None:
    @flow
    def leaks() -> object:
        return threading.Lock()

    with pytest.raises(SerializationError) as caught:
        leaks()
    message = str(caught.value)
    assert "flow 'leaks'" in message and "returned a value Stead cannot store" in message
    assert "does not apply to a flow's result" in message and "opt in to pickle" not in message


def test_an_unstorable_task_result_keeps_the_pickle_advice(store) -> None:
    @task
    def leak() -> object:
        return threading.Lock()

    @flow
    def f() -> None:
        leak()

    with pytest.raises(SerializationError, match=r"opt in to pickle with "
                                                 r"@task\(serializer='pickle'\)"):
        f()
    [run] = store.list_runs(RunFilter())
    assert "opt in to pickle" in json.loads(store.load_steps(run.id)["1"].error)["message"]
