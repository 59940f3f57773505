"""GenServer: callbacks, replies, deferred replies, stop, crashes, start/start_link, call semantics."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from philipjose.actors.genserver import GEN_CALL, GEN_CAST
from philipjose.term import ImproperList, Reference

from .helpers import DOWN, EXIT, KILLED, NOPROC, NORMAL, SHUTDOWN, run, wait_down

EVENTS: list[Any] = []


class Counter(pj.GenServer):
    async def init(self, start: int = 0) -> None:
        self.n = start
        self.pending: list[pj.actors.Caller] = []

    async def handle_call(self, request: Any, caller: pj.actors.Caller) -> Any:
        if request == "get":
            return self.n
        if request == "inc":
            self.n += 1
            return self.n
        if request == "later":
            self.pending.append(caller)
            return pj.NOREPLY
        if request == "release":
            for c in self.pending:
                pj.reply(c, ("released", self.n))
            self.pending.clear()
            return "ok"
        if request == "stop":
            raise pj.Stop("normal", reply="bye")
        if request == "stop_shutdown":
            return pj.Stop("shutdown")  # returned instead of raised, no reply
        if request == "crash":
            raise RuntimeError("handle_call crashed")
        if request == "slow":
            await trio.sleep(100)
            return "slow done"
        if request == "whoami":
            return caller[0]
        return ("unknown", request)

    async def handle_cast(self, msg: Any) -> None:
        if msg == "crash":
            raise ValueError("cast crash")
        self.n += msg

    async def handle_info(self, msg: Any) -> None:
        EVENTS.append(("info", msg))

    async def terminate(self, reason: Any) -> None:
        EVENTS.append(("terminate", reason))


class SyncCallbacks(pj.GenServer):
    def init(self) -> None:  # type: ignore[override]
        self.items: list[Any] = []

    def handle_call(self, request: Any, caller: pj.actors.Caller) -> Any:  # type: ignore[override]
        return list(self.items)

    def handle_cast(self, msg: Any) -> None:  # type: ignore[override]
        self.items.append(msg)


class FailingInit(pj.GenServer):
    async def init(self, how: str) -> None:
        if how == "raise":
            raise ValueError("bad init")
        if how == "stop":
            raise pj.Stop("no_go")
        if how == "exit":
            raise pj.Exit("init_exit")
        if how == "hang":
            await trio.sleep_forever()


class Trapper(pj.GenServer):
    async def init(self) -> None:
        pj.process_flag("trap_exit", True)

    async def terminate(self, reason: Any) -> None:
        EVENTS.append(("trapper_terminate", reason))

    async def handle_info(self, msg: Any) -> None:
        EVENTS.append(("trapper_info", msg))


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


def test_call_cast_info_and_state() -> None:
    async def main() -> Any:
        pid = await Counter.start(10, name="counter")
        assert await pj.call("counter", "get") == 10
        assert await pj.call(pid, "inc") == 11
        pj.cast("counter", 5)
        pj.cast(pid, 1)
        assert await pj.call(("counter", "nonode@nohost"), "get") == 17
        pj.send(pid, "plain message")
        assert await pj.call(pid, "whoami") == pj.self()
        return await pj.call(pid, "other")

    assert run(main) == ("unknown", "other")
    assert EVENTS == [("info", "plain message")]


def test_sync_callbacks_are_accepted() -> None:
    async def main() -> Any:
        pid = await SyncCallbacks.start()
        pj.cast(pid, "a")
        pj.cast(pid, "b")
        return await pj.call(pid, "items")

    assert run(main) == ["a", "b"]


def test_deferred_reply() -> None:
    async def waiter(server: Pid, report: Pid) -> None:
        pj.send(report, ("answer", await pj.call(server, "later", timeout=None)))

    async def main() -> Any:
        server = await Counter.start(3)
        for _ in range(2):
            pj.spawn(waiter, server, pj.self())
        await trio.testing.wait_all_tasks_blocked()
        assert await pj.call(server, "release") == "ok"
        return [await pj.receive(), await pj.receive()]

    assert run(main) == [("answer", ("released", 3))] * 2


def test_stop_with_reply_then_terminate() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        ref = pj.monitor(pid)
        reply = await pj.call(pid, "stop")
        return reply, await wait_down(ref)

    assert run(main) == ("bye", NORMAL)
    assert EVENTS == [("terminate", NORMAL)]


def test_returned_stop_instruction() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        ref = pj.monitor(pid)
        with pytest.raises(pj.Exit) as info:
            await pj.call(pid, "stop_shutdown")
        return info.value.reason, await wait_down(ref)

    reason, down = run(main)
    assert reason == (SHUTDOWN, (Atom("gen_server"), Atom("call"), [reason[1][2][0], "stop_shutdown", 5.0]))
    assert down == SHUTDOWN
    assert EVENTS == [("terminate", SHUTDOWN)]


def test_crash_in_handle_call_exits_caller_at_once_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> Any:
        pid = await Counter.start(name="c")
        start = trio.current_time()
        with pytest.raises(pj.Exit) as info:
            await pj.call("c", "crash", timeout=50)
        assert trio.current_time() == start  # at once, not at the timeout
        return pid, info.value.reason

    with caplog.at_level(logging.ERROR):
        _pid, reason = run(main)
    crash, where = reason
    assert crash[:3] == (Atom("python_exception"), b"RuntimeError", b"handle_call crashed")
    assert where == (Atom("gen_server"), Atom("call"), ["c", "crash", 50])
    assert [("terminate", crash)] == EVENTS
    assert any("crashed" in r.getMessage() for r in caplog.records)


def test_crash_in_handle_cast() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        ref = pj.monitor(pid)
        pj.cast(pid, "crash")
        return await wait_down(ref)

    reason = run(main)
    assert reason[1:3] == (b"ValueError", b"cast crash")


def test_call_to_dead_or_missing_server_fails_at_once() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        ref = pj.monitor(pid)
        pj.exit(pid, "kill")
        await wait_down(ref)
        start = trio.current_time()
        with pytest.raises(pj.Exit) as dead:
            await pj.call(pid, "get")
        with pytest.raises(pj.Exit) as missing:
            await pj.call("nobody", "get")
        with pytest.raises(pj.Exit) as missing_node:
            await pj.call(("nobody", "nonode@nohost"), "get", timeout=None)
        assert trio.current_time() == start
        assert pj.process_info(pj.self())["message_queue_len"] == 0  # type: ignore[index]
        return dead.value.reason, missing.value.reason, missing_node.value.reason

    dead, missing, missing_node = run(main)
    assert dead[0] == NOPROC
    assert missing == (NOPROC, (Atom("gen_server"), Atom("call"), ["nobody", "get", 5.0]))
    assert missing_node[0] == NOPROC and missing_node[1][2][2] == Atom("infinity")


def test_server_killed_during_call_fails_caller_with_killed() -> None:
    async def main() -> Any:
        pid = await Counter.start()

        async def killer() -> None:
            await trio.sleep(1)
            pj.exit(pid, "kill")

        pj.spawn(killer)
        with pytest.raises(pj.Exit) as info:
            await pj.call(pid, "slow", timeout=50)
        return info.value.reason[0], trio.current_time()

    reason, now = run(main)
    assert reason == KILLED and now == pytest.approx(1.0, abs=0.01)


def test_call_timeout_and_late_reply_dropped() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        with pytest.raises(TimeoutError):
            await pj.call(pid, "slow", timeout=1)
        # the server replies at t=100; that reply must never reach our mailbox
        await trio.sleep(200)
        assert pj.is_alive(pid)
        assert await pj.call(pid, "get") == 0
        return pj.process_info(pj.self())["message_queue_len"]  # type: ignore[index]

    assert run(main) == 0


def test_call_with_negative_timeout_and_calling_self() -> None:
    async def main() -> Any:
        with pytest.raises(ValueError):
            await pj.call(pj.self(), "x", timeout=-1)
        pj.register("me", pj.self())
        with pytest.raises(pj.Exit) as info:
            await pj.call("me", "x")
        return info.value.reason[0]

    assert run(main) == Atom("calling_self")


def test_start_errors() -> None:
    async def main() -> Any:
        out = {}
        for how in ("raise", "stop", "exit"):
            with pytest.raises(pj.StartError) as info:
                await FailingInit.start(how)
            out[how] = info.value
        pid = await Counter.start(name="dup")
        with pytest.raises(pj.StartError) as dup:
            await Counter.start(name="dup")
        out["dup"] = dup.value
        with pytest.raises(TimeoutError):
            await FailingInit.start("hang", timeout=3)
        with pytest.raises(ValueError):
            await Counter.start(timeout=-1)
        return out, pid, len(pj.processes())

    out, pid, nprocs = run(main)
    assert out["raise"].reason[1:3] == (b"ValueError", b"bad init")
    assert isinstance(out["raise"].__cause__, ValueError)
    assert out["stop"].reason == Atom("no_go")
    assert out["exit"].reason == Atom("init_exit")
    assert out["dup"].reason == (Atom("already_started"), pid)
    assert nprocs == 2  # main and the "dup" server: the failed and timed-out ones are gone


def test_start_link_failure_does_not_kill_caller() -> None:
    async def main() -> Any:
        with pytest.raises(pj.StartError):
            await FailingInit.start_link("raise")
        await trio.testing.wait_all_tasks_blocked()
        return pj.process_info(pj.self())["links"], pj.process_info(pj.self())["message_queue_len"]  # type: ignore[index]

    assert run(main) == ([], 0)


def test_start_link_links_and_crash_propagates() -> None:
    async def parent(report: Pid) -> None:
        pid = await Counter.start_link()
        pj.send(report, ("server", pid))
        await pj.receive()

    async def main() -> Any:
        p, ref = pj.spawn_monitor(parent, pj.self())
        _, server = await pj.receive()
        assert pj.process_info(server)["links"] == [p]  # type: ignore[index]
        pj.cast(server, "crash")
        return await wait_down(ref)

    assert run(main)[1] == b"ValueError"


def test_trapping_server_terminates_on_parent_exit() -> None:
    async def parent(report: Pid) -> None:
        pid = await Trapper.start_link()
        pj.send(report, ("server", pid))
        await pj.receive()

    async def main() -> Any:
        p = pj.spawn(parent, pj.self())
        _, server = await pj.receive()
        ref = pj.monitor(server)

        # an EXIT from some other linked process is just info
        async def other() -> None:
            pj.link(server)
            raise pj.Exit("other_reason")

        o, oref = pj.spawn_monitor(other)
        await wait_down(oref)
        pj.exit(p, SHUTDOWN)
        return o, await wait_down(ref)

    other, reason = run(main)
    assert reason == SHUTDOWN
    assert [("trapper_info", (EXIT, other, Atom("other_reason"))), ("trapper_terminate", SHUTDOWN)] == EVENTS


def test_wire_envelopes_are_otp_shapes() -> None:
    """A hand-written 'Erlang' client: plain tags and alias tags both get (tag, value) replies."""

    async def main() -> Any:
        server = await Counter.start(5)
        me = pj.self()
        pj.send(server, (GEN_CALL, (me, "plain-tag"), "get"))
        plain = await pj.receive()
        rt = pj.actors.current_runtime()
        alias_ref = rt.make_ref()
        proc = rt._procs[(me.serial << 32) | me.id]
        rt.alias(proc, alias_ref)
        tag = ImproperList((Atom("alias"),), alias_ref)
        pj.send(server, (GEN_CALL, (Pid("nonode@nohost", 999_999), tag), "get"))  # reply goes to the alias
        aliased = await pj.receive()
        pj.send(server, (GEN_CAST, 2))
        return plain, aliased, tag, await pj.call(server, "get")

    plain, aliased, tag, final = run(main)
    assert plain == ("plain-tag", 5)
    assert aliased == (tag, 5)
    assert final == 7


def test_call_message_uses_alias_tag_and_monitors_server() -> None:
    async def fake_server(report: Pid) -> None:
        msg = await pj.receive()
        pj.send(report, ("seen", msg, pj.process_info(pj.self())["monitored_by"]))  # type: ignore[index]
        pj.actors.reply(msg[1], "fine")

    async def main() -> Any:
        srv = pj.spawn(fake_server, pj.self())
        result = await pj.call(srv, "req")
        seen = await pj.receive()
        return result, seen, pj.self()

    result, (_, msg, monitored_by), me = run(main)
    assert result == "fine"
    kind, (caller, tag), request = msg
    assert kind == Atom("$gen_call") and caller == me and request == "req"
    assert isinstance(tag, ImproperList) and tag.elements == (Atom("alias"),)
    assert isinstance(tag.tail, Reference)
    assert monitored_by == [me]


def test_reply_bad_caller_and_default_callbacks() -> None:
    class Bare(pj.GenServer):
        pass

    async def main() -> Any:
        with pytest.raises(pj.BadArg):
            pj.reply("nope", 1)  # type: ignore[arg-type]
        pid = await Bare.start()
        ref = pj.monitor(pid)
        pj.send(pid, "info is logged and ignored")
        with pytest.raises(pj.Exit) as info:
            await pj.call(pid, "x")
        return info.value.reason[0][1], await wait_down(ref)

    kind, _ = run(main)
    assert kind == b"NotImplementedError"
    with pytest.raises(TypeError):
        run(lambda: _start_bare_with_args(Bare))


async def _start_bare_with_args(cls: type[pj.GenServer]) -> None:
    try:
        await cls.start(1)
    except pj.StartError as e:
        raise e.__cause__ from None  # type: ignore[misc]


def test_cast_never_fails() -> None:
    async def main() -> None:
        pj.cast("nobody", 1)
        pj.cast(Pid("nonode@nohost", 12345), 1)

    run(main)


def test_down_shape_for_genserver() -> None:
    async def main() -> Any:
        pid = await Counter.start()
        ref = pj.monitor(pid)
        await pj.call(pid, "stop")
        return await pj.receive(), ref, pid

    msg, ref, pid = run(main)
    assert msg == (DOWN, ref, Atom("process"), pid, NORMAL)
