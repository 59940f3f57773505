"""Registry (register/unregister/whereis/registered), is_alive, process_info, processes, bad input."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing

import philipjose as pj
from philipjose import Atom, Pid

from .helpers import forever, run, wait_down


async def _quick() -> None:
    return None


def test_register_whereis_unregister_registered() -> None:
    async def main() -> Any:
        pid = pj.spawn(forever)
        pj.register("worker", pid)
        pj.register(Atom("me"), pj.self())
        found = pj.whereis("worker"), pj.whereis(Atom("me")), pj.whereis("nobody")
        names = sorted(pj.registered())
        pj.unregister("worker")
        return pid, found, names, pj.whereis("worker"), pj.process_info(pid)["registered_name"]  # type: ignore[index]

    pid, found, names, after, info_name = run(main)
    assert found[0] == pid and found[2] is None
    assert names == [Atom("me"), Atom("worker")] and all(type(n) is Atom for n in names)
    assert after is None and info_name is None


def test_register_badarg_cases() -> None:
    async def main() -> None:
        a = pj.spawn(forever)
        b = pj.spawn(forever)
        pj.register("taken", a)
        with pytest.raises(pj.BadArg, match="already registered to"):
            pj.register("taken", b)
        with pytest.raises(pj.BadArg, match="already registered as"):
            pj.register("second_name", a)
        dead, ref = pj.spawn_monitor(_quick)
        await wait_down(ref)
        with pytest.raises(pj.BadArg, match="not alive"):
            pj.register("dead", dead)
        with pytest.raises(pj.BadArg, match="not a local process"):
            pj.register("remote", Pid("other@host", 1, 0, 1))
        with pytest.raises(pj.BadArg, match="undefined"):
            pj.register("undefined", b)
        with pytest.raises(pj.BadArg):
            pj.register(42, b)  # type: ignore[arg-type]
        with pytest.raises(pj.BadArg, match="not registered"):
            pj.unregister("never")
        with pytest.raises(ValueError):  # BadArg is a ValueError
            pj.unregister("never")

    run(main)


def test_name_is_freed_when_process_dies() -> None:
    async def main() -> Any:
        pid, ref = pj.spawn_monitor(forever)
        pj.register("temp", pid)
        pj.exit(pid, "kill")
        await wait_down(ref)
        again = pj.spawn(forever)
        pj.register("temp", again)
        return pj.whereis("temp") == again

    assert run(main)


def test_is_alive() -> None:
    async def main() -> Any:
        pid, ref = pj.spawn_monitor(_quick)
        alive_before = pj.is_alive(pid)
        await wait_down(ref)
        with pytest.raises(pj.BadArg):
            pj.is_alive(Pid("other@host", 1, 0, 1))
        return alive_before, pj.is_alive(pid), pj.is_alive(pj.self())

    assert run(main) == (True, False, True)


def test_process_info_and_processes() -> None:
    async def sleeper() -> None:
        await trio.sleep_forever()

    async def waiting_in_receive() -> None:
        await pj.receive(lambda m: m == "never")

    async def main() -> Any:
        me = pj.self()
        w = pj.spawn(waiting_in_receive)
        s = pj.spawn_link(sleeper)
        fresh = pj.spawn(_quick)
        info_fresh = pj.process_info(fresh)
        await trio.testing.wait_all_tasks_blocked()
        assert pj.process_info(w)["status"] == "waiting"  # type: ignore[index]
        pj.send(w, "a")
        pj.send(w, "b")
        pj.register("w", w)
        ref = pj.monitor(w)
        pj.process_flag("trap_exit", True)
        return (
            me,
            w,
            s,
            fresh,
            ref,
            info_fresh,
            pj.process_info(w),
            pj.process_info(s),
            pj.process_info(me),
            pj.process_info(fresh),
            pj.processes(),
        )

    me, w, s, _fresh, _ref, info_fresh, info_w, info_s, info_me, info_dead, procs = run(main)
    assert info_fresh["status"] == "runnable"
    assert info_w["status"] == "runnable"  # woken by the messages, not run yet
    assert info_w["message_queue_len"] == 2
    assert info_w["registered_name"] == Atom("w")
    assert info_w["monitored_by"] == [me]
    assert info_w["current_function"].endswith("test_process_info_and_processes.<locals>.waiting_in_receive")
    assert info_w["initial_call"] == info_w["current_function"]
    assert info_s["status"] == "waiting" and info_s["links"] == [me]
    assert info_s["current_function"].endswith("sleeper")
    assert info_me["status"] == "running" and info_me["trap_exit"] is True
    assert info_me["links"] == [s] and info_me["monitors"] == [w]
    assert info_me["current_function"].endswith("test_process_info_and_processes.<locals>.main")
    assert info_dead is None
    assert procs == [me, w, s]
    assert set(info_w) == {
        "status",
        "message_queue_len",
        "links",
        "monitors",
        "monitored_by",
        "registered_name",
        "trap_exit",
        "current_function",
        "initial_call",
    }


def test_spawn_bad_input() -> None:
    def sync_fn() -> int:
        return 1

    async def takes_one(x: int) -> None:
        return None

    async def main() -> Any:
        with pytest.raises(TypeError, match="sync_fn"):
            pj.spawn(sync_fn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not callable"):
            pj.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pj.spawn(takes_one)  # wrong arguments fail here
        # partials and lambdas returning coroutines are fine
        _p, r1 = pj.spawn_monitor(functools.partial(takes_one, 1))
        _p, r2 = pj.spawn_monitor(lambda: takes_one(2))
        return await wait_down(r1), await wait_down(r2)

    assert run(main) == (Atom("normal"), Atom("normal"))


def test_outside_runtime_errors() -> None:
    with pytest.raises(pj.NoProcessError):
        pj.spawn(_quick)
    with pytest.raises(RuntimeError):
        pj.actors.current_runtime()
    with pytest.raises(pj.NoProcessError):
        pj.whereis("x")
