"""``sys`` system messages on a GenServer and a supervisor, from Python (``pj.sys``); the same
requests from a real erl are in ``tests/interop/test_sys_erl.py``, compared with OTP's gen_server."""

from __future__ import annotations

from typing import Any

import pytest

import philipjose as pj
from philipjose import Atom, supervisors
from philipjose.actors._system import SYSTEM, charlist
from philipjose.term import ExportFun

from .helpers import NOPROC, SHUTDOWN, run, wait_down

EVENTS: list[Any] = []


class Counter(pj.GenServer):
    async def init(self, start: int = 0) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: pj.actors.Caller) -> Any:
        if request == "inc":
            self.n += 1
        return self.n

    async def handle_cast(self, msg: Any) -> None:
        EVENTS.append(("cast", msg, self.n))
        self.n += msg

    async def terminate(self, reason: Any) -> None:
        EVENTS.append(("terminate", reason))


class Named(Counter):
    def system_get_state(self) -> Any:
        return self.n

    def system_replace_state(self, fun: Any) -> Any:
        self.n = fun(self.n)
        return self.n


def test_get_state_is_a_copy_of_the_attributes_and_replace_state_replaces_them() -> None:
    async def main() -> list[Any]:
        await Counter.start(5, name="c")
        state = await pj.sys.get_state("c")
        state["n"] = 100  # a copy: the server is not touched
        out: list[Any] = [state, await pj.call("c", "get")]
        out.append(await pj.sys.replace_state("c", lambda s: {**s, "n": s["n"] * 2}))
        out.append(await pj.call("c", "inc"))
        return out

    assert run(main) == [{"n": 100}, 5, {"n": 10}, 11]


def test_replace_state_failures_leave_the_state_unchanged() -> None:
    async def main() -> list[Any]:
        await Counter.start(1, name="c")
        reasons = []
        for fun in (lambda s: 1 / 0, lambda s: 42, lambda s: {1: 2}):
            with pytest.raises(pj.sys.SysError) as info:
                await pj.sys.replace_state("c", fun)
            reasons.append(info.value.reason[:2])
        # an Erlang fun (as a remote caller would send) cannot run here
        me = pj.self()
        fun = ExportFun("lists", "reverse", 1)
        pj.send("c", (SYSTEM, (me, Atom("tag")), (Atom("replace_state"), fun)))
        answer = await pj.receive(lambda m: type(m) is tuple and m[0] == Atom("tag"))
        reasons.append(answer[1])
        return [reasons, await pj.call("c", "get")]

    failed = (Atom("callback_failed"), (Atom("gen_server"), Atom("system_replace_state")))
    badfun = (Atom("error"), (*failed, (Atom("error"), (Atom("badfun"), ExportFun("lists", "reverse", 1)))))
    assert run(main) == [[failed, failed, failed, badfun], 1]


def test_overridden_state_callbacks() -> None:
    async def main() -> list[Any]:
        await Named.start(3, name="c")
        return [
            await pj.sys.get_state("c"),
            await pj.sys.replace_state("c", lambda n: n + 1),
            await pj.call("c", "get"),
        ]

    assert run(main) == [3, 4, 4]


def test_get_status_has_gen_servers_shape() -> None:
    async def main() -> tuple[Any, Any, Any]:
        me = pj.self()
        pid = await Counter.start_link(7, name="c")
        unnamed = await Counter.start(1)
        return me, pid, (await pj.sys.get_status("c"), await pj.sys.get_status(unnamed), unnamed)

    me, pid, (status, other, unnamed) = run(main)
    assert status == (
        Atom("status"),
        pid,
        (Atom("module"), Atom("gen_server")),
        [
            [
                (Atom("$initial_call"), (Atom(f"{__name__}.Counter"), Atom("init"), 1)),
                (Atom("$ancestors"), [me]),
            ],
            Atom("running"),
            me,
            [],
            [
                (Atom("header"), charlist("Status for generic server c")),
                (
                    Atom("data"),
                    [
                        (charlist("Status"), Atom("running")),
                        (charlist("Parent"), me),
                        (charlist("Logged events"), []),
                    ],
                ),
                (Atom("data"), [(charlist("State"), {"n": 7})]),
            ],
        ],
    )
    # not linked: its own parent, as gen_server:start gives; no name: the pid in the header
    assert other[3][2] == unnamed
    assert other[3][4][0] == (
        Atom("header"),
        charlist(f"Status for generic server <0.{unnamed.id}.{unnamed.serial}>"),
    )


def test_a_suspended_server_handles_only_system_messages_until_resumed() -> None:
    async def main() -> list[Any]:
        EVENTS.clear()
        await Counter.start(0, name="c")
        await pj.sys.suspend("c")
        pj.cast("c", 1)
        pj.cast("c", 2)
        out: list[Any] = []
        try:
            await pj.call("c", "get", timeout=1)
        except TimeoutError:
            out.append("timeout")
        out.append((await pj.sys.get_status("c"))[3][1])
        out.append(await pj.sys.get_state("c"))
        out.append(list(EVENTS))
        await pj.sys.change_code("c", "counter", None, [])  # a no-op, only while suspended
        await pj.sys.resume("c")
        out.append(await pj.call("c", "get"))
        out.append(list(EVENTS))
        with pytest.raises(pj.sys.SysError) as info:
            await pj.sys.change_code("c", "counter", None, [])
        out.append(info.value.reason[0])
        return out

    assert run(main) == [
        "timeout",
        Atom("suspended"),
        {"n": 0},
        [],
        3,
        [("cast", 1, 0), ("cast", 2, 1)],
        Atom("unknown_system_msg"),
    ]


def test_terminate_runs_the_terminate_callback() -> None:
    async def main() -> Any:
        EVENTS.clear()
        pid = await Counter.start(0, name="c")
        ref = pj.monitor(pid)
        await pj.sys.terminate("c", "shutdown")
        return await wait_down(ref), list(EVENTS)

    assert run(main) == (SHUTDOWN, [("terminate", SHUTDOWN)])


def test_a_suspended_server_still_ends_with_its_parent() -> None:
    async def main() -> Any:
        EVENTS.clear()

        async def parent() -> None:
            class Trapping(Counter):
                async def init(self, start: int = 0) -> None:
                    pj.process_flag("trap_exit", True)
                    self.n = start

            pj.send(outer, await Trapping.start_link(0))
            await pj.receive()

        outer = pj.self()
        papa = pj.spawn(parent)
        server = await pj.receive()
        await pj.sys.suspend(server)
        ref = pj.monitor(server)
        pj.exit(papa, "bye")
        return await wait_down(ref), list(EVENTS)

    assert run(main) == (Atom("bye"), [("terminate", Atom("bye"))])


def test_other_system_requests_and_debug() -> None:
    async def main() -> list[Any]:
        pid = await Counter.start(0)
        me = pj.self()
        out = []
        for request in (
            Atom("nonsense"),
            (Atom("debug"), Atom("no_debug")),
            (Atom("debug"), (Atom("log"), Atom("get"))),
            (Atom("debug"), (Atom("statistics"), Atom("get"))),
            (Atom("debug"), (Atom("trace"), False)),
            (Atom("debug"), (Atom("trace"), True)),
        ):
            pj.send(pid, (SYSTEM, (me, request), request))
            out.append((await pj.receive(lambda m, r=request: type(m) is tuple and m[0] == r))[1])
        return out

    assert run(main) == [
        (Atom("error"), (Atom("unknown_system_msg"), Atom("nonsense"))),
        Atom("ok"),
        (Atom("ok"), []),
        (Atom("ok"), Atom("no_statistics")),
        Atom("ok"),
        Atom("unknown_debug"),
    ]


def test_sys_on_a_missing_server_exits_as_otp() -> None:
    async def main() -> Any:
        with pytest.raises(pj.Exit) as info:
            await pj.sys.get_state("nobody", timeout=1)
        return info.value.reason

    assert run(main) == (NOPROC, (Atom("sys"), Atom("get_state"), ["nobody", 1]))


async def _idle() -> None:
    await pj.receive()


def test_supervisors_answer_get_state_get_status_and_suspend() -> None:
    async def main() -> list[Any]:
        sup = await supervisors.start([{"id": "w", "start": _idle}], name="top")
        (child,) = [c.pid for c in await supervisors.which_children(sup)]
        state = await pj.sys.get_state("top")
        status = await pj.sys.get_status("top")
        await pj.sys.suspend("top")
        try:
            await pj.call("top", Atom("which_children"), timeout=1)
            blocked = False
        except TimeoutError:
            blocked = True
        await pj.sys.resume("top")
        with pytest.raises(pj.sys.SysError):
            await pj.sys.replace_state("top", lambda s: s)
        ref = pj.monitor(sup)
        await pj.sys.terminate("top", "shutdown")
        return [state, status[2], status[3][4][-1], blocked, await wait_down(ref), child, pj.is_alive(child)]

    state, module, callback, blocked, reason, child, alive = run(main)
    assert state[:3] == (Atom("state"), (Atom("local"), Atom("top")), Atom("one_for_one"))
    ids, records = state[3]
    assert ids == [Atom("w")]
    assert records[Atom("w")][:3] == (Atom("child"), child, Atom("w"))
    assert module == (Atom("module"), Atom("gen_server"))
    assert callback == (Atom("supervisor"), [(charlist("Callback"), Atom("philipjose.supervisors"))])
    assert (blocked, reason, alive) == (True, SHUTDOWN, False)
