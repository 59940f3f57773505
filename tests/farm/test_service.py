"""The farm service's decisions (pure) and the server itself, called from Python processes."""

from __future__ import annotations

import concurrent.futures
import time

import trio

import philipjose as pj
from philipjose import Atom, farm, rpc
from philipjose.farm.errors import FarmError, TaskError, TaskTimeout, WorkerLost
from philipjose.farm.service import (
    SERVICE_NAME,
    Map,
    Race,
    Refusal,
    Stats,
    Submit,
    error_reason,
    outcome_term,
    parse_request,
)
from philipjose.rpc import Registry
from tests.farm.test_farm import Watch

ok, error, undef = Atom("ok"), Atom("error"), Atom("undef")


def square(x: int) -> int:
    return x * x


async def async_square(x: int) -> int:
    await trio.sleep(0)
    return x * x


def nap(seconds: float) -> str:
    time.sleep(seconds)  # the task's work: it is what the caller's death must stop
    return "woke"


def _registry() -> Registry:
    registry = Registry()
    registry.expose("pyfarm", [square, nap])
    return registry


def test_requests_are_looked_up_in_the_allow_list_before_anything_runs() -> None:
    registry = _registry()
    m, sq = Atom("pyfarm"), Atom("square")
    assert parse_request(Atom("stats"), registry) == Stats()
    assert parse_request((Atom("map"), m, sq, [[1], [2]]), registry) == Map(((square, [1]), (square, [2])))
    assert parse_request((Atom("submit"), m, sq, [3]), registry) == Submit(square, [3])
    race = parse_request((Atom("race"), [(m, sq, [1]), (m, Atom("nap"), [2])]), registry)
    assert race == Race(((square, [1]), (nap, [2])))
    # one unexposed call refuses the whole map, as OTP's apply would: {undef, [{M, F, Args, []}]}
    refused = parse_request((Atom("map"), m, sq, [[1], [1, 2]]), registry)
    assert refused == Refusal((error, (undef, [(m, sq, [1, 2], [])])))
    os_cmd = parse_request((Atom("submit"), Atom("os"), Atom("cmd"), [[108, 115]]), registry)
    assert os_cmd == Refusal((error, (undef, [(Atom("os"), Atom("cmd"), [[108, 115]], [])])))
    assert parse_request((Atom("submit"), b"pyfarm", sq, [1]), registry).reply[1][0] == undef  # type: ignore[union-attr]
    for bad in [(Atom("map"), m, sq, 3), (Atom("submit"), m, sq, 3), (Atom("race"), []), (Atom("race"), [1])]:
        assert parse_request(bad, registry) == Refusal((error, Atom("badarg")))
    assert parse_request((Atom("launch"), 1), registry) == Refusal(
        (error, (Atom("unknown_call"), (Atom("launch"), 1)))
    )
    assert parse_request("stats", registry) == Refusal((error, (Atom("unknown_call"), "stats")))


def test_errors_have_erlang_shapes() -> None:
    raised = TaskError("builtins.ZeroDivisionError", "division by zero", "Traceback ...")
    assert error_reason(raised) == (
        Atom("python_exception"),
        b"ZeroDivisionError",
        b"division by zero",
        b"Traceback ...",
    )
    assert error_reason(TaskTimeout("t", 5.0)) == Atom("timeout")
    assert error_reason(concurrent.futures.CancelledError()) == Atom("cancelled")
    assert error_reason(WorkerLost("t", ["w1@h", "w2@h"])) == (
        Atom("worker_lost"),
        [Atom("w1@h"), Atom("w2@h")],
    )
    assert error_reason(FarmError("the farm is closed")) == (Atom("farm_error"), b"the farm is closed")
    assert outcome_term(True, [1, b"x"]) == (ok, [1, b"x"])
    assert outcome_term(True, object())[1][0] == Atom("unencodable")
    assert outcome_term(False, TaskTimeout("t")) == (error, Atom("timeout"))


def test_the_service_answers_python_callers_and_a_dead_callers_map_is_cancelled() -> None:
    rpc.expose("pyfarm", [square, nap, async_square])
    watch = Watch()

    async def main() -> object:
        async with farm.Farm(workers=1, service=True, progress=watch) as f:
            request = (Atom("map"), Atom("pyfarm"), Atom("square"), [[2], [3]])
            got = await pj.call(SERVICE_NAME, request, timeout=60)
            asynchronous = (Atom("map"), Atom("pyfarm"), Atom("async_square"), [[5]])
            got_async = await pj.call(SERVICE_NAME, asynchronous, timeout=60)  # run under trio.run

            async def caller() -> None:
                await pj.call(SERVICE_NAME, (Atom("map"), Atom("pyfarm"), Atom("nap"), [[60]]), timeout=120)

            pid = pj.spawn(caller)
            await watch.until(lambda c: c.running == 1)  # the nap runs on the worker
            pj.exit(pid, Atom("kill"))
            await watch.until(lambda c: c.cancelled == 1)  # the service saw its DOWN: the map stops
            assert await f.submit(square, 5) == 25  # and the worker is free again
            stats = await pj.call(SERVICE_NAME, Atom("stats"), timeout=60)
            return got, got_async, stats

    try:
        got, got_async, stats = pj.run(main, node="svc@localhost", cookie="svc-cookie")
    finally:
        rpc.unexpose("pyfarm")
    assert got == (ok, [4, 9]) and got_async == (ok, [25])
    assert stats[0] == ok and stats[1][Atom("completed")] == 4 and stats[1][Atom("cancelled")] == 1
    assert stats[1][Atom("workers")] == {Atom("python"): 1, Atom("erlang"): 0}
