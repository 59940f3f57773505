"""Group leaders in the runtime: inheritance, pj.group_leader/0,2, the default io server's options,
print redirection scoped to one task, and GROUP_LEADER and spawn requests between philipjose nodes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, rpc
from philipjose.node import NodeConfigError
from tests.node.support import local_nodes


def test_inherited_at_spawn_and_changed_per_process() -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {"default": pj.group_leader()}
        mine = pj.io.start_server(output=lambda text: None)

        async def report(to: pj.Pid) -> None:
            pj.send(to, pj.group_leader())

        pj.spawn(report, pj.self())
        out["child_before"] = await pj.receive(timeout=5)
        assert pj.group_leader(mine, pj.self()) is True
        out["after"] = pj.group_leader()
        pj.spawn(report, pj.self())
        out["child_after"] = await pj.receive(timeout=5)
        idle = pj.spawn(pj.receive)
        pj.group_leader(out["default"], idle)
        out["mine_still"] = pj.group_leader()
        out["mine"] = mine
        dead = pj.spawn(report, pj.self())
        await pj.receive(timeout=5)
        while pj.is_alive(dead):
            await trio.sleep(0)
        with pytest.raises(pj.BadArg):
            pj.group_leader(mine, dead)
        with pytest.raises(pj.BadArg):
            pj.group_leader("x", pj.self())  # type: ignore[arg-type]
        return out

    out = pj.run(main)
    assert out["child_before"] == out["default"]
    assert out["after"] == out["child_after"] == out["mine_still"] == out["mine"] != out["default"]


def test_default_io_server_writes_to_a_logger_line_by_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.io.output")

    async def main() -> None:
        await pj.io.put_chars("first line\nsecond ")
        await pj.io.format("~w~n", [[1, 2]])
        await pj.io.put_chars("no newline yet")

    with caplog.at_level(logging.INFO, logger="test.io.output"):
        pj.run(main, io_output=logger)
    assert [r.getMessage() for r in caplog.records if r.name == "test.io.output"] == [
        "first line",
        "second [1,2]",
    ]


def test_default_io_server_reads_from_a_configured_input() -> None:
    async def main() -> list[Any]:
        return [
            await pj.io.get_line("name? "),
            await pj.io.get_chars("", 3),
            await pj.io.get_line(""),
            await pj.io.get_line(""),
        ]

    written: list[str] = []
    assert pj.run(main, io_output=written.append, io_input="ada\nbob\n") == ["ada\n", "bob", "\n", None]
    assert "".join(written) == "name? "


def test_bad_io_options_are_refused() -> None:
    async def main() -> None:
        pass

    with pytest.raises(NodeConfigError):
        pj.run(main, io_output=42)
    with pytest.raises(NodeConfigError):
        pj.run(main, io_input=3.5)


def test_print_redirection_is_scoped_to_its_task(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> list[str]:
        got: list[str] = []
        pj.group_leader(pj.io.start_server(output=got.append), pj.self())
        go, other_done = trio.Event(), trio.Event()

        async def other() -> None:
            await go.wait()
            print("other task")  # started before the block: not redirected
            other_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            with pj.io.print_to_group_leader() as redirection:
                print("redirected", 1)
                go.set()
                await other_done.wait()
                await trio.to_thread.run_sync(lambda: print("from a thread"))
                sys.stdout.flush()
            await redirection.drain()
        print("after the block")
        return got

    got = pj.run(main)
    assert "".join(got) == "redirected 1\n"
    printed = capsys.readouterr().out
    assert "other task" in printed and "from a thread" in printed and "after the block" in printed
    assert "redirected" not in printed


def test_a_dead_device_is_terminated() -> None:
    async def main() -> Any:
        gone = pj.spawn(pj.receive)
        pj.exit(gone, Atom("kill"))
        with pytest.raises(pj.io.IoError) as info:
            await pj.io.put_chars("x", device=gone)
        return info.value.reason

    assert pj.run(main) == Atom("terminated")


async def test_group_leaders_across_philipjose_nodes() -> None:
    async def say(text: bytes) -> Atom:
        print(text.decode())
        await pj.io.format("formatted ~w~n", [[1]])
        return Atom("ok")

    rpc.expose("pytest_gl", {"say": say})
    try:
        async with local_nodes(2) as (a, b):

            async def on_a() -> dict[str, Any]:
                got: list[str] = []
                collector = pj.io.start_server(output=got.append)
                pj.group_leader(collector, pj.self())
                out: dict[str, Any] = {
                    "call": await rpc.call(b.name, "pytest_gl", "say", [b"hello from b"], timeout=10)
                }
                out["text_after_call"] = "".join(got)
                return out

            out = await a.run(on_a)
    finally:
        rpc.unexpose("pytest_gl")
    assert out["call"] == Atom("ok")
    # written before the call returned: print() and pj.io.format in b, to a's group leader
    assert out["text_after_call"] == "hello from b\nformatted [1]\n"


async def test_group_leader_signal_between_philipjose_nodes() -> None:
    async with local_nodes(2) as (a, b):

        async def on_b() -> pj.Pid:
            async def body() -> None:
                sender = await pj.receive()
                await pj.io.put_chars("to a's collector\n")
                pj.send(sender, Atom("done"))

            return pj.spawn(body)

        remote = await b.run(on_b)

        async def on_a() -> str:
            got: list[str] = []
            collector = pj.io.start_server(output=got.append)
            assert pj.group_leader(collector, remote) is True  # a GROUP_LEADER signal to node b
            pj.send(remote, pj.self())
            await pj.receive(match=Atom("done"), timeout=10)
            return "".join(got)

        assert await a.run(on_a) == "to a's collector\n"
