"""Hostile handshakes against a philipjose node, side by side with OTP where that is meaningful.

A raw-socket client (``tests/node/hostile.py``) claims the names of other nodes: with a wrong cookie
through a whole handshake (a spoofed ``alive``), or a name and then silence (half-open). The node
must not disturb the connection of the node it claims to be, must not refuse the real node, and must
not drop what it queued for it; the attacker loses only its own connection. The erl tests run a real
``erl`` canary that stays connected to the attacked nodes, pings them every 100 ms and watches
nodedown, a link and a monitor; the same attacks go to a real ``erl`` node in the same test.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from philipjose.epmd import port_please
from philipjose.node.connection import Connection
from philipjose.node.control import RegSend
from philipjose.node.flags import ADVERTISED
from philipjose.term import term_to_binary
from tests.interop.dist_support import Peer, private_epmd, python_node, start_peer
from tests.node.hostile import HalfOpen, authenticated, spoof
from tests.node.support import LocalNode, local_nodes, unique
from tests.tools import Otp, require

CANARY_SOURCE = Path(__file__).parent / "erl" / "pj_canary.erl"
COOKIE = "hostile-cookie"
HOLDER_PID = Atom("holder_pid")
COUNT = Atom("count")


# -- Python-only cases (two philipjose nodes in this Trio run) ------------------------------------


def named_nodes(*prefixes: str, **options: Any) -> AbstractAsyncContextManager[list[LocalNode]]:
    """Nodes named ``prefix<unique>@localhost`` on loopback that know each other's ports (no EPMD)."""
    return local_nodes(len(prefixes), prefixes=prefixes, **{"cookie": COOKIE, **options})


@asynccontextmanager
async def two_nodes(first: str, second: str, **options: Any) -> AsyncIterator[tuple[LocalNode, LocalNode]]:
    async with named_nodes(first, second, **options) as (a, b):
        yield a, b


async def sink() -> None:
    """Counts what it receives; ``(count, From)`` gets ``(count, N)``."""
    received = 0
    while True:
        msg = await pj.receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == COUNT:
            pj.send(msg[1], (COUNT, received))
        else:
            received += 1


async def start_sink() -> None:
    pj.register("sink", pj.spawn(sink))


async def count_at(node: str) -> int:
    pj.send(("sink", node), (COUNT, pj.self()))
    msg = await pj.receive(match=lambda m: type(m) is tuple and m[:1] == (COUNT,), timeout=10)
    return int(msg[1])


async def until_count(node: str, expected: int) -> int:
    """The sink's count once it reaches ``expected`` (bounded polling: the messages are in flight)."""
    with trio.move_on_after(10):
        while (n := await count_at(node)) < expected:
            await trio.sleep(0.05)
        return n
    return await count_at(node)


class Relay:
    """A TCP relay that holds the bytes of the connection it accepts until ``release`` is set."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = trio.Event()
        self.release = trio.Event()
        self.port = 0

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        async with listeners[0] as listener:
            client = await listener.accept()
        self.accepted.set()
        await self.release.wait()
        server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server)
            nursery.start_soon(self._pump, server, client)

    @staticmethod
    async def _pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except trio.BrokenResourceError:
            pass
        await trio.aclose_forcefully(sink)


@pytest.mark.parametrize("order", ["ours_smaller", "ours_greater"])
async def test_signals_queued_for_a_node_survive_a_failed_attempt_claiming_it(
    order: str, caplog: pytest.LogCaptureFixture
) -> None:
    # ours_smaller: the attacker is answered ok_simultaneous (its name is greater), so OTP would
    # give our own attempt up for it; ours_greater: it is answered nok.
    first, second = ("a", "z") if order == "ours_smaller" else ("z", "a")
    async with two_nodes(first, second) as (a, x):
        assert a.dist is not None and x.dist is not None
        await x.run(start_sink)
        async with trio.open_nursery() as nursery:
            relay = Relay(x.dist.port)
            await nursery.start(relay.serve)
            a.dist.peer_ports[x.name] = relay.port

            async def send_100() -> None:
                for i in range(100):
                    pj.send(("sink", x.name), i)

            await a.run(send_100)  # queued: the connection is being set up (held by the relay)
            await relay.accepted.wait()
            outcome = await spoof(a.dist.port, x.name)
            expected = "ok_simultaneous" if order == "ours_smaller" else "nok"
            assert outcome.status == expected
            assert not outcome.acked and outcome.closed
            assert x.name not in a.dist.nodes()
            relay.release.set()
            assert await a.run(until_count, x.name, 100) == 100
            assert Atom(x.name) in a.dist.nodes()
            nursery.cancel_scope.cancel()
    if order == "ours_smaller":
        assert f"(claims to be {x.name}): wrong cookie" in caplog.text


async def test_simultaneous_connects_with_signals_queued_both_ways_lose_nothing() -> None:
    # The smaller side answers ok_simultaneous and keeps its own attempt until the other's is
    # proven; the greater side answers nok. Either way the signals queued on both sides arrive.
    for _ in range(10):
        async with two_nodes("a", "b") as (a, b):
            assert a.dist is not None and b.dist is not None
            await a.run(start_sink)
            await b.run(start_sink)

            async def send_50(to: str) -> None:
                for i in range(50):
                    pj.send(("sink", to), i)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.run, send_50, b.name)
                nursery.start_soon(b.run, send_50, a.name)
            assert await a.run(until_count, b.name, 50) == 50
            assert await b.run(until_count, a.name, 50) == 50
            assert a.dist.nodes() == [Atom(b.name)] and b.dist.nodes() == [Atom(a.name)]


async def test_a_wrong_cookie_claiming_a_connected_node_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with two_nodes("a", "b") as (a, b):
        assert a.dist is not None
        assert await a.run(pj.node.ping, b.name)
        peer_before = a.dist.peers[Atom(b.name)]
        for _ in range(5):
            outcome = await spoof(a.dist.port, b.name)
            assert outcome.status == "alive" and outcome.challenged
            assert outcome.closed and not outcome.acked
        assert a.dist.peers[Atom(b.name)] is peer_before and peer_before.up
        assert await a.run(pj.node.ping, b.name)
        text = caplog.text
        assert text.count(f"(claims to be {b.name}): wrong cookie") == 5
        assert "127.0.0.1:" in text


async def test_a_reconnect_that_proves_the_cookie_replaces_the_old_connection() -> None:
    # The OTP case `alive` exists for: the peer restarted and connects again before the old
    # connection is known to be dead. Once it has proved the cookie, the old connection goes.
    async with two_nodes("a", "b") as (a, b):
        assert a.dist is not None
        assert await a.run(pj.node.ping, b.name)
        old = a.dist.peers[Atom(b.name)]

        async def watch() -> Any:
            pj.node.monitor_node(b.name)
            return await pj.receive(timeout=10)

        async with trio.open_nursery() as nursery:
            down: list[Any] = []

            async def watcher() -> None:
                down.append(await a.run(watch))

            nursery.start_soon(watcher)
            await trio.testing.wait_all_tasks_blocked()
            outcome = await spoof(a.dist.port, b.name, cookie=COOKIE.encode())
        assert outcome.status == "alive" and outcome.acked
        assert down == [(Atom("nodedown"), Atom(b.name))]
        assert not old.up


async def test_half_open_attempts_neither_lock_out_nor_drop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "philipjose.node")
    # The attacked node's name is the greatest: OTP would answer nok to the real x and y here.
    async with named_nodes("z", "a", "b", handshake_timeout=0.5) as (node, x, y):
        assert node.dist is not None
        await y.run(start_sink)
        stalled = [await HalfOpen.open(node.dist.port, name) for name in (x.name, x.name, y.name, y.name)]
        assert [h.status for h in stalled] == ["ok"] * 4
        assert await x.run(pj.node.ping, node.name)  # the real x connects

        async def send_100() -> None:
            for i in range(100):
                pj.send(("sink", y.name), i)

        await node.run(send_100)  # queued while the connection to y is set up
        assert await node.run(until_count, y.name, 100) == 100
        stalled.append(await HalfOpen.open(node.dist.port, x.name))
        assert stalled[-1].status == "alive"
        for attempt in stalled:
            assert await attempt.wait_closed(5)
            await attempt.aclose()
        assert sorted(node.dist.nodes()) == sorted([Atom(x.name), Atom(y.name)])
    assert "timed out after 0.5 s waiting for its challenge reply" in caplog.text
    assert "timed out after 0.5 s waiting for its answer to 'alive'" in caplog.text
    assert f"(claims to be {x.name})" in caplog.text


async def test_a_silent_connection_is_logged_with_its_address_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with two_nodes("a", "b", handshake_timeout=0.3) as (a, _):
        assert a.dist is not None
        stream = await trio.open_tcp_stream("127.0.0.1", a.dist.port)
        local = stream.socket.getsockname()
        async with stream:
            assert await stream.receive_some(10) == b""  # closed by the node when the time is up
    reason = "timed out after 0.3 s waiting for its name"
    assert f"handshake with 127.0.0.1:{local[1]} failed: {reason}" in caplog.text


async def test_repeated_warnings_from_one_host_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    async with two_nodes("a", "b") as (a, b):
        assert a.dist is not None
        for _ in range(20):
            assert not (await spoof(a.dist.port, b.name)).acked
        assert await a.run(pj.node.ping, b.name)  # the node still serves
    wrong = [r for r in caplog.records if r.getMessage().endswith("wrong cookie")]
    assert len(wrong) == 5


async def test_unknown_control_messages_are_logged_at_most_five_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with two_nodes("a", "b") as (a, _):
        assert a.dist is not None
        await a.run(start_sink)
        raw = unique("raw")
        stream = await authenticated(a.dist.port, raw, COOKIE.encode())
        body = b"\x83D\x00" + term_to_binary((99, Atom("what")))[1:]  # header without atom cache
        unknown_frame = len(body).to_bytes(4, "big") + body
        marker = Connection(ADVERTISED).send(RegSend(Pid(raw, 1, 0, 4), Atom("sink"), "after them"))
        async with stream:
            await stream.send_all(unknown_frame * 1000 + marker)
            assert await a.run(until_count, a.name, 1) == 1  # all 1,000 handled, then the marker
            assert Atom(raw) in a.dist.nodes()  # ignored, not a reason to close
    unknown = [r for r in caplog.records if "unknown control message" in r.getMessage()]
    assert len(unknown) == 5
    assert f"from {raw} (127.0.0.1:" in unknown[0].getMessage()


async def test_out_of_descriptors_on_accept_logs_once_a_second_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "philipjose.node")
    async with two_nodes("a", "b") as (a, b):
        assert a.dist is not None
        assert await b.run(pj.node.ping, a.name)  # an established peer
        clients = [trio.socket.socket() for _ in range(3)]  # their descriptors, before there are none
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        filler: list[int] = []
        worst = 0.0
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, hard))
            with pytest.raises(OSError) as info:
                while True:
                    filler.append(os.open(os.devnull, os.O_RDONLY))
            assert info.value.errno == errno.EMFILE
            for client in clients:  # connections the node cannot accept now
                await client.connect(("127.0.0.1", a.dist.port))
            with trio.move_on_after(2.5):
                while True:
                    start = trio.current_time()
                    assert await b.run(pj.node.ping, a.name)
                    worst = max(worst, trio.current_time() - start)
                    await trio.sleep(0.1)
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            for client in clients:
                client.close()
    lines = [r for r in caplog.records if "cannot accept connections: EMFILE" in r.getMessage()]
    assert 1 <= len(lines) <= 4, [r.getMessage() for r in lines]
    assert worst < 1.0


# -- Against real erl nodes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary_beam(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    """The canary compiled by ``otp``'s erlc: the tests that use it run on each Erlang installation."""
    out = tmp_path_factory.mktemp(f"canary-{otp}")
    subprocess.run([require("erlc", otp), "-o", str(out), str(CANARY_SOURCE)], check=True)
    return out


@asynccontextmanager
async def erl_node(
    beam: Path, epmd: int, prefix: str, run: Sequence[str], *, ready: str = "READY", name: str = ""
) -> AsyncIterator[Peer]:
    """``erl`` (setup time 1 s) running ``pj_canary:RUN``; waits for its ``ready`` line."""
    name = name or unique(prefix)
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam)]
    argv += ["-kernel", "net_setuptime", "1", "-run", "pj_canary", *run]
    async with start_peer(argv, epmd, name) as peer:
        if ready:
            await peer.line(ready)
        yield peer


async def erl_port(name: str, epmd: int) -> int:
    alive, _, host = name.partition("@")
    info = await port_please(alive, host, epmd_port=epmd)
    assert info is not None
    return info.port


async def holder() -> None:
    while True:
        sender, _ = await pj.receive()
        pj.send(sender, (HOLDER_PID, pj.self()))


async def start_holder() -> None:
    pj.register("holder", pj.spawn(holder))


async def report(canary: str) -> tuple[Any, ...]:
    pj.send(("canary", canary), (Atom("report"), pj.self()))
    msg = await pj.receive(match=lambda m: type(m) is tuple and m[:1] == (Atom("canary_report"),), timeout=10)
    return tuple(msg[1:])


@pytest.mark.interop
async def test_spoofed_alive_with_a_wrong_cookie_never_gives_the_canary_a_nodedown(
    canary_beam: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with private_epmd() as epmd, python_node(epmd, cookie=COOKIE) as py:
        assert py.dist is not None
        await py.run(start_holder)
        async with (
            erl_node(canary_beam, epmd, "ot", ["holder"]) as otp,
            erl_node(canary_beam, epmd, "canary", ["canary", py.name, otp.name]) as canary,
        ):
            otp_port = await erl_port(otp.name, epmd)
            for _ in range(3):
                for port in (py.dist.port, otp_port):
                    outcome = await spoof(port, canary.name)
                    assert outcome.status == "alive" and outcome.challenged, outcome
                    assert outcome.closed and not outcome.acked, outcome
                await trio.sleep(0.3)  # let the canary ping between attacks
            downs, exits, monitors, pings, pangs, worst_us = await py.run(report, canary.name)
    assert (downs, exits, monitors, pangs) == ([], [], [], 0)
    assert pings >= 10
    assert worst_us < 1_000_000
    assert f"(claims to be {canary.name}): wrong cookie" in caplog.text


@pytest.mark.interop
async def test_half_open_attempts_claiming_a_node_let_it_in(canary_beam: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd, cookie=COOKIE, handshake_timeout=1.0) as py:
        assert py.dist is not None
        async with erl_node(canary_beam, epmd, "ot", ["holder"]) as otp:
            otp_port = await erl_port(otp.name, epmd)
            x_name = unique("zx")  # greater than both attacked names: OTP lets x in, see the docs
            ports = (py.dist.port, otp_port)
            stalled: list[HalfOpen] = []

            async def attack(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                for port in ports:
                    stalled.append(await HalfOpen.open(port, x_name))
                task_status.started()
                while True:
                    await trio.sleep(0.5)
                    for port in ports:
                        stalled.append(await HalfOpen.open(port, x_name))

            async with trio.open_nursery() as nursery:
                await nursery.start(attack)
                async with erl_node(
                    canary_beam, epmd, "", ["pinger", "5", py.name, otp.name], ready="", name=x_name
                ) as x:
                    results = [await x.line("PING ", timeout=30) for _ in range(10)]
                    await x.line("DONE")
                nursery.cancel_scope.cancel()
            for attempt in stalled:
                await attempt.aclose()
    assert results == ["pong"] * 10


@pytest.mark.interop
async def test_messages_queued_for_a_node_survive_half_open_attempts_claiming_it(canary_beam: Path) -> None:
    # Not run against erl: OTP 25 loses them (measured: 0 of 100 delivered, both name orders), because
    # the half-open attempt owns the pending connection and its failure aborts the queue.
    async with private_epmd() as epmd, python_node(epmd, cookie=COOKIE, handshake_timeout=1.0) as py:
        assert py.dist is not None
        async with erl_node(canary_beam, epmd, "y", ["holder"]) as y:
            attempt = await HalfOpen.open(py.dist.port, y.name)
            assert attempt.status == "ok"

            async def send_100() -> None:
                for i in range(100):
                    pj.send(("sink", y.name), i)

            await py.run(send_100)
            assert await attempt.wait_closed(5)  # the attempt failed (its setup time ran out)
            await attempt.aclose()
            assert await py.run(until_count, y.name, 100) == 100
