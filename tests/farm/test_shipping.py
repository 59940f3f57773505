"""Shipping tasks with cloudpickle, and outcomes and errors back; the farm's error classes."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from philipjose.farm.errors import (
    ArgumentsTooLarge,
    FarmError,
    MachinesError,
    ResultTooLarge,
    TaskError,
    TaskTimeout,
    UnpicklableTask,
    WorkerLost,
)
from philipjose.farm.shipping import (
    Raised,
    Returned,
    decode_outcome,
    describe_task,
    dumps_outcome,
    dumps_task,
    loads_outcome,
    loads_task,
    outcome_of,
    run_task,
    unwrap,
)

# A worker stand-in: a fresh python that runs one task payload from stdin and writes the outcome.
_WORKER = (
    "import sys; from philipjose.farm.shipping import run_task; "
    "sys.stdout.buffer.write(run_task(sys.stdin.buffer.read()))"
)


def _run_elsewhere(payload: bytes, cwd: Path) -> Any:
    """Run ``payload`` in another python process whose working directory is ``cwd``; unwrap it."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER], input=payload, capture_output=True, cwd=cwd, check=True
    )
    return unwrap(loads_outcome(done.stdout))


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")


def _raise_value_error(x: int) -> None:
    raise ValueError(f"bad value {x}")


def test_importable_functions_travel_by_reference() -> None:
    data = dumps_task(math.factorial, (5,))
    assert b"factorial" in data and b"math" in data
    assert len(data) < 100
    fn, args, kwargs = loads_task(data)
    assert fn is math.factorial and args == (5,) and kwargs == {}


def test_lambdas_and_closures_travel_by_value(tmp_path: Path) -> None:
    offset = 1000

    def make_adder(n: int) -> Any:
        return lambda x, *, scale=1: (x + n) * scale + offset

    payload = dumps_task(make_adder(7), (3,), {"scale": 2})
    # the other process runs where this test module is not importable: the code itself travelled
    assert _run_elsewhere(payload, tmp_path) == (3 + 7) * 2 + 1000


def test_unpicklable_task_fails_at_submit_with_a_clear_error() -> None:
    lock = threading.Lock()

    def uses_lock() -> None:
        with lock:
            pass

    with pytest.raises(UnpicklableTask) as info:
        dumps_task(uses_lock)
    message = str(info.value)
    assert "cannot ship task" in message and "uses_lock" in message and "lock" in message.lower()
    assert isinstance(info.value, TypeError)

    with pytest.raises(UnpicklableTask, match=r"cannot ship task builtins\.len"):
        dumps_task(len, ((i for i in range(3)),))
    with pytest.raises(UnpicklableTask, match="must be callable"):
        dumps_task(42)  # type: ignore[arg-type]


def test_results_come_back() -> None:
    assert unwrap(loads_outcome(run_task(dumps_task(math.factorial, (10,))))) == 3628800
    assert unwrap(loads_outcome(run_task(dumps_task(dict, (), {"a": 1})))) == {"a": 1}


def test_remote_exception_is_raised_as_task_error(tmp_path: Path) -> None:
    payload = dumps_task(lambda x: 1 // x, (0,))
    with pytest.raises(TaskError) as info:
        _run_elsewhere(payload, tmp_path)
    error = info.value
    assert error.remote_type == "builtins.ZeroDivisionError"
    assert error.message == "integer division or modulo by zero"
    assert "Traceback (most recent call last)" in error.remote_traceback
    assert "1 // x" in error.remote_traceback
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert "Remote traceback:" in str(error)
    assert isinstance(error, FarmError)


def test_exception_that_cannot_be_rebuilt_still_reports() -> None:
    def raise_it() -> None:
        raise NeedsTwoArgs(1, 2)

    outcome = loads_outcome(run_task(dumps_task(raise_it)))
    assert isinstance(outcome, Raised)
    assert outcome.exception is None
    assert outcome.remote_type.endswith("test_shipping.NeedsTwoArgs")
    error = outcome.to_error()
    assert error.message == "1 and 2" and error.__cause__ is None


def test_exception_class_missing_here_still_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("pj_gone_module")
    exec("class Gone(Exception):\n    pass\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "pj_gone_module", module)
    raised = outcome_of(module.Gone("gone"))
    assert raised.remote_type == "pj_gone_module.Gone" and raised.exception is not None
    monkeypatch.delitem(sys.modules, "pj_gone_module")  # the farmer does not have that module
    error = raised.to_error()
    assert error.remote_type == "pj_gone_module.Gone" and error.message == "gone"
    assert error.__cause__ is None


def test_unpicklable_result_comes_back_as_an_error() -> None:
    outcome = loads_outcome(run_task(dumps_task(threading.Lock)))
    assert isinstance(outcome, Raised)
    assert outcome.remote_type == "philipjose.farm.errors.UnpicklableTask"
    assert "the task's result (lock) cannot be pickled" in outcome.message


def test_task_whose_module_is_missing_on_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (here / "pj_only_here.py").write_text("def answer():\n    return 42\n")
    monkeypatch.syspath_prepend(str(here))
    import pj_only_here  # type: ignore[import-not-found]

    payload = dumps_task(pj_only_here.answer)  # by reference: the worker must import it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(TaskError) as info:
        _run_elsewhere(payload, elsewhere)
    assert info.value.remote_type == "builtins.ModuleNotFoundError"
    assert "pj_only_here" in info.value.message


def test_ship_by_value_makes_an_uninstalled_module_travel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from philipjose.farm.shipping import ship_by_value

    here = tmp_path / "here"
    here.mkdir()
    (here / "pj_by_value.py").write_text("def answer(x):\n    return x * 2\n")
    monkeypatch.syspath_prepend(str(here))
    import pj_by_value  # type: ignore[import-not-found]

    ship_by_value(pj_by_value)
    try:
        payload = dumps_task(pj_by_value.answer, (21,))
    finally:
        import cloudpickle

        cloudpickle.unregister_pickle_by_value(pj_by_value)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _run_elsewhere(payload, elsewhere) == 42


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_base_exceptions_of_a_task_are_its_error(exc: BaseException) -> None:
    outcome = loads_outcome(run_task(dumps_task(_raise, (exc,))))
    assert isinstance(outcome, Raised)
    assert outcome.remote_type == f"builtins.{type(exc).__name__}"
    error = outcome.to_error()
    assert type(error.__cause__) is type(exc)
    assert loads_outcome(run_task(dumps_task(sys.exit, (2,)))).message == "2"  # type: ignore[union-attr]


class _ExitsWhenUnpickled:
    def __reduce__(self) -> tuple[Any, ...]:
        return sys.exit, (4,)


class _FailsWhenUnpickled:
    def __reduce__(self) -> tuple[Any, ...]:
        return operator_truediv, (1, 0)


def operator_truediv(a: int, b: int) -> float:
    return a / b


def test_decode_outcome_turns_anything_raised_into_the_tasks_error() -> None:
    assert decode_outcome(dumps_outcome(Returned([1, 2]))) == Returned([1, 2])
    error = decode_outcome(dumps_outcome(Returned(_ExitsWhenUnpickled())))
    assert isinstance(error, TaskError) and error.remote_type == "builtins.SystemExit"
    assert "could not be unpickled" in error.message and "__reduce__" not in error.message
    error = decode_outcome(dumps_outcome(Returned(_FailsWhenUnpickled())))
    assert isinstance(error, TaskError) and error.remote_type == "builtins.ZeroDivisionError"
    error = decode_outcome(b"not a pickle")
    assert isinstance(error, TaskError) and "could not be unpickled" in error.message
    # an exception that cannot be rebuilt here (its reconstructor exits) still arrives as TaskError
    raised = Raised("x.Y", "m", "", pickle.dumps(_ExitsWhenUnpickled()))
    error = decode_outcome(dumps_outcome(raised))
    assert isinstance(error, TaskError) and error.remote_type == "x.Y" and error.__cause__ is None
    assert isinstance(decode_outcome(dumps_outcome(outcome_of(ValueError("v")))).__cause__, ValueError)


def test_an_outcome_over_the_limit_becomes_result_too_large() -> None:
    value = b"x" * 100_000
    exact = len(dumps_outcome(Returned(value)))
    assert loads_outcome(dumps_outcome(Returned(value), limit=exact)) == Returned(value)
    small = dumps_outcome(Returned(value), limit=exact - 1, task=7)
    assert len(small) < 10_000
    error = decode_outcome(small)
    assert type(error) is ResultTooLarge
    assert (error.task, error.size, error.limit) == (7, exact, exact - 1)
    assert f"{exact} bytes" in str(error) and f"max_message_size of {exact - 1} bytes" in str(error)
    assert isinstance(error, TaskError)
    # many small pieces (not one big bytes) are counted the same way
    many = list(range(50_000))
    size = len(dumps_outcome(Returned(many)))
    error = decode_outcome(dumps_outcome(Returned(many), limit=1000, task=1))
    assert isinstance(error, ResultTooLarge) and error.size == size
    error = decode_outcome(run_task(dumps_task(bytes, (5000,)), limit=100, task=3))
    assert isinstance(error, ResultTooLarge) and error.task == 3


def test_size_errors_pickle_and_name_the_size() -> None:
    for cls in (ArgumentsTooLarge, ResultTooLarge):
        error = cls("3 (f)", 2000, 1000)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls and (copy.task, copy.size, copy.limit) == ("3 (f)", 2000, 1000)
        assert "2000 bytes" in str(copy) and "1000 bytes" in str(copy)
    assert isinstance(ArgumentsTooLarge("t", 2, 1), ValueError)


def test_outcomes_round_trip() -> None:
    assert loads_outcome(dumps_outcome(Returned([1, "a"]))) == Returned([1, "a"])
    raised = outcome_of(ValueError("x"))
    assert raised.remote_type == "builtins.ValueError" and raised.traceback == "ValueError: x\n"
    assert loads_outcome(dumps_outcome(raised)) == raised
    with pytest.raises(TypeError, match="not Returned or Raised"):
        loads_outcome(pickle.dumps(42))


def test_describe_task() -> None:
    assert describe_task(math.factorial) == "math.factorial"
    assert describe_task(_raise_value_error) == f"{__name__}._raise_value_error"
    assert describe_task(object()).startswith("<object object")


# -- the error classes -----------------------------------------------------------------------------------


def test_errors_inherit_what_callers_catch() -> None:
    assert issubclass(UnpicklableTask, TypeError)
    assert issubclass(MachinesError, ValueError)
    assert issubclass(TaskTimeout, TimeoutError)
    for cls in (TaskError, WorkerLost, TaskTimeout, UnpicklableTask, MachinesError):
        assert issubclass(cls, FarmError)


@pytest.mark.parametrize(
    "error",
    [
        TaskError("builtins.KeyError", "'k'", "Traceback...\nKeyError: 'k'\n"),
        WorkerLost(7, ["w1", "w2", "w3"]),
        TaskTimeout(3, 2.5),
        TaskTimeout(3),
        UnpicklableTask("cannot ship task f"),
        MachinesError("m.toml: x: y"),
    ],
)
def test_errors_pickle(error: FarmError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.args == error.args


def test_error_messages() -> None:
    assert str(TaskError("builtins.KeyError", "", "")) == "builtins.KeyError"
    assert str(TaskError("m.E", "boom", "tb\n")) == "m.E: boom\n\nRemote traceback:\ntb"
    lost = WorkerLost("f(3)", ("a", "b"))
    assert str(lost) == "task f(3) was lost with 2 worker(s) that died running it: a, b"
    assert lost.workers == ("a", "b")
    assert str(TaskTimeout(4, 1.5)) == "task 4 did not finish within 1.5 s"
    assert str(TaskTimeout(4)) == "task 4 passed its deadline"


def test_remote_traceback_names_the_function(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from philipjose.farm.shipping import dumps_task

            def crunch(n):
                raise ArithmeticError("n=%d" % n)

            sys.stdout.buffer.write(dumps_task(crunch, (9,)))
            """
        )
    )
    payload = subprocess.run([sys.executable, str(script)], capture_output=True, check=True).stdout
    # crunch lives in __main__ of the submitting script: it travelled by value
    with pytest.raises(TaskError) as info:
        _run_elsewhere(payload, tmp_path)
    assert info.value.remote_type == "builtins.ArithmeticError"
    assert 'in crunch\n    raise ArithmeticError("n=%d" % n)' in info.value.remote_traceback
    assert f'File "{script}", line 6, in crunch' in info.value.remote_traceback


def test_remote_traceback_shows_source_the_worker_does_not_have(tmp_path: Path) -> None:
    """A worker on another machine has no copy of the script: the source lines travel with the code."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from philipjose.farm.shipping import dumps_task

            def outer(n):
                def inner(m):
                    total = m * 2
                    raise LookupError("m=%d" % total)
                return inner(n)

            sys.stdout.buffer.write(dumps_task(outer, (4,)))
            """
        )
    )
    payload = subprocess.run([sys.executable, str(script)], capture_output=True, check=True).stdout
    script.unlink()
    with pytest.raises(TaskError) as info:
        _run_elsewhere(payload, tmp_path)
    text = info.value.remote_traceback
    assert f'File "{script}", line 9, in outer\n    return inner(n)' in text
    assert f'File "{script}", line 8, in inner\n    raise LookupError("m=%d" % total)' in text


def test_a_task_of_importable_names_takes_the_c_pickler_and_main_goes_by_value() -> None:
    import operator

    import __main__
    from philipjose.farm.shipping import PICKLE_PROTOCOL, loads_task

    plain = pickle.dumps((operator.add, (1, 2), {"x": [1]}), protocol=PICKLE_PROTOCOL)
    assert dumps_task(operator.add, (1, 2), {"x": [1]}) == plain

    def probe(x: int) -> int:
        return x + 1

    probe.__module__, probe.__qualname__ = "__main__", "pj_shipping_probe"
    __main__.pj_shipping_probe = probe  # importable by name here, in __main__
    try:
        data = dumps_task(probe, (1,))
        assert data != pickle.dumps((probe, (1,), {}), protocol=PICKLE_PROTOCOL)  # by value
        delattr(__main__, "pj_shipping_probe")  # a worker's __main__ has no such name
        fn, args, _ = loads_task(data)
        assert fn(*args) == 2
    finally:
        if hasattr(__main__, "pj_shipping_probe"):
            delattr(__main__, "pj_shipping_probe")
