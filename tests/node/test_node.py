"""The Trio node between philipjose runtimes (in one Trio run, over loopback, without EPMD):
messages, links, monitors, noconnection, ping, simultaneous connect, cookies, bad input, ticks."""

from __future__ import annotations

import secrets
import struct

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid, Reference
from philipjose.actors import run_async
from philipjose.node import NodeConfigError, NotDistributedError
from philipjose.node import control as c
from philipjose.node import handshake as hs
from philipjose.node.connection import Connection
from philipjose.node.flags import ADVERTISED, DFLAG_HANDSHAKE_23, MANDATORY
from philipjose.node.framing import Tick
from philipjose.node.sentinels import NEED_DATA
from philipjose.term import term_to_binary

from .support import LocalNode, local_nodes

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")


async def echo() -> None:
    while True:
        sender, msg = await pj.receive()
        pj.send(sender, msg)


async def test_messages_ping_and_nodes() -> None:
    async with local_nodes(2) as (a, b):

        async def serve() -> Pid:
            pid = pj.spawn(echo)
            pj.register("echo", pid)
            return pid

        echo_pid = await a.run(serve)

        async def client() -> list[object]:
            assert await pj.node.ping(a.name)
            assert pj.node.nodes() == [Atom(a.name)]
            got = []
            terms = [
                1,
                -(1 << 80),
                2.5,
                b"bin",
                Atom("atom"),
                [1, [2]],
                (1, (2,)),
                {Atom("k"): [b"v"]},
                pj.self(),
            ]
            for term in terms:
                pj.send(("echo", a.name), (pj.self(), term))
                got.append(await pj.receive(timeout=10))
            for i in range(1000):
                pj.send(echo_pid, (pj.self(), i))
            got.append([await pj.receive(timeout=10) for _ in range(1000)])
            return got

        got = await b.run(client)
        assert got[:-1] == [
            1,
            -(1 << 80),
            2.5,
            b"bin",
            Atom("atom"),
            [1, [2]],
            (1, (2,)),
            {Atom("k"): [b"v"]},
            got[8],
        ]
        assert isinstance(got[8], Pid) and got[8].node == Atom(b.name)
        assert got[-1] == list(range(1000))


@pytest.mark.parametrize("busy_wait", [0.0, 0.0002])
async def test_bursts_and_round_trips_with_and_without_busy_wait(busy_wait: float) -> None:
    # Bursts of big messages fill whole reads (the reader's read-again and yield path); round trips
    # drain the socket each time (the busy-poll, or the wait for readability when it is off).
    async with local_nodes(2, busy_wait=busy_wait) as (a, b):

        async def serve() -> None:
            pj.register("echo", pj.spawn(echo))

        await a.run(serve)
        big = bytes(40_000)

        async def client() -> tuple[list[int], list[int]]:
            for i in range(200):
                pj.send(("echo", a.name), (pj.self(), (i, big)))
            burst = []
            for _ in range(200):
                i, data = await pj.receive(timeout=10)
                assert data == big
                burst.append(i)
            trips = []
            for i in range(300):
                pj.send(("echo", a.name), (pj.self(), i))
                trips.append(await pj.receive(timeout=10))
            return burst, trips

        assert await b.run(client) == (list(range(200)), list(range(300)))


async def test_busy_wait_must_be_between_0_and_1_second() -> None:
    async def main() -> None:
        for bad in (-0.1, 2.0):
            with pytest.raises(NodeConfigError):
                await pj.node.start("bw@localhost", epmd=False, cookie="c", busy_wait=bad)

    await run_async(main)


async def test_ping_unknown_node_is_false() -> None:
    async with local_nodes(1, handshake_timeout=2) as (a,):

        async def go() -> tuple[bool, bool]:
            return await pj.node.ping("nobody@localhost"), await pj.node.connect("bad name")

        assert await a.run(go) == (False, False)


async def test_links_monitors_and_exits_across_nodes() -> None:
    async with local_nodes(2) as (a, b):

        async def victim() -> None:
            reason = await pj.receive()
            raise pj.Exit(reason)

        async def spawn_victims() -> list[Pid]:
            return [pj.spawn(victim) for _ in range(4)]

        v1, v2, v3, v4 = await a.run(spawn_victims)

        async def watcher() -> list[object]:
            pj.process_flag("trap_exit", True)
            pj.link(v1)
            pj.send(v1, Atom("bye"))
            got: list[object] = [await pj.receive(timeout=10)]
            ref = pj.monitor(v2)
            pj.exit(v2, Atom("kill"))
            got.append(await pj.receive(timeout=10))
            ref_name = pj.monitor(("nosuch", a.name))
            got.append(await pj.receive(timeout=10))
            pj.link(v3)
            pj.unlink(v3)
            pj.send(v3, Atom("quiet"))
            ref4 = pj.monitor(v4)
            pj.send(v4, Atom("after_unlink"))
            got.append(await pj.receive(timeout=10))  # only the DOWN of v4: v3 is no longer linked
            return [got, ref, ref_name, ref4]

        got, ref, ref_name, ref4 = await b.run(watcher)
        assert got[0] == (EXIT, v1, Atom("bye"))
        assert got[1] == (DOWN, ref, Atom("process"), v2, Atom("killed"))
        assert got[2] == (DOWN, ref_name, Atom("process"), (Atom("nosuch"), Atom(a.name)), Atom("noproc"))
        assert got[3] == (DOWN, ref4, Atom("process"), v4, Atom("after_unlink"))


async def test_noconnection_when_the_connection_drops() -> None:
    async with local_nodes(2) as (a, b):

        async def sleeper() -> None:
            await pj.receive()

        s1, s2 = await a.run(lambda: _spawn_two(sleeper))

        async def watcher() -> set[object]:
            pj.process_flag("trap_exit", True)
            pj.link(s1)
            ref = pj.monitor(s2)
            pj.node.monitor_node(a.name)
            assert await pj.node.ping(a.name)  # the link and monitor reached a before the ping
            assert pj.node.disconnect(a.name)
            got = {await pj.receive(timeout=10) for _ in range(3)}
            assert got == {
                (EXIT, s1, Atom("noconnection")),
                (DOWN, ref, Atom("process"), s2, Atom("noconnection")),
                (Atom("nodedown"), Atom(a.name)),
            }
            assert await pj.node.ping(a.name)  # reconnects
            return got

        await b.run(watcher)

        async def remote_side_saw_it() -> object:
            pj.monitor(s1)  # the link exit from b reached s1 (not trapping): it dies
            return await pj.receive(timeout=10)

        down = await a.run(remote_side_saw_it)
        assert down[0] == DOWN and down[3] == s1 and down[4] in (Atom("noconnection"), Atom("noproc"))


async def _spawn_two(fn: object) -> tuple[Pid, Pid]:
    return pj.spawn(fn), pj.spawn(fn)  # type: ignore[arg-type]


async def test_gen_server_call_across_nodes_and_noproc() -> None:
    class Counter(pj.GenServer):
        async def init(self) -> None:
            self.n = 0

        async def handle_call(self, request: object, caller: object) -> object:
            self.n += 1
            return self.n

    async with local_nodes(2) as (a, b):

        async def start() -> None:
            await Counter.start(name="counter")

        await a.run(start)

        async def client() -> tuple[int, int, object]:
            one = await pj.call(("counter", a.name), Atom("inc"))
            two = await pj.call(("counter", a.name), Atom("inc"))
            try:
                await pj.call(("nosuch", a.name), Atom("inc"), timeout=None)
            except pj.Exit as exc:
                return one, two, exc.reason
            return one, two, None

        one, two, reason = await b.run(client)
        assert (one, two) == (1, 2)
        assert isinstance(reason, tuple) and reason[0] == Atom("noproc")


async def test_simultaneous_connect_ends_with_one_connection() -> None:
    async with local_nodes(2) as (a, b):

        async def both() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.run, _connect_to, b.name)
                nursery.start_soon(b.run, _connect_to, a.name)

        with trio.fail_after(20):
            await both()
        assert a.dist is not None and b.dist is not None
        assert a.dist.nodes() == [Atom(b.name)] and b.dist.nodes() == [Atom(a.name)]

        async def ping(other: str) -> bool:
            return await pj.node.ping(other)

        assert await a.run(ping, b.name)
        assert await b.run(ping, a.name)


async def _connect_to(node: str) -> bool:
    return await pj.node.connect(node)


async def test_wrong_cookie_is_refused_and_the_node_keeps_serving() -> None:
    async with local_nodes(2) as (a, b):
        intruder = LocalNode(
            "intruder@localhost", {"cookie": "wrong", "epmd": False, "listen_host": "127.0.0.1"}
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(intruder.serve)
            assert intruder.dist is not None and a.dist is not None
            intruder.dist.peer_ports[a.name] = a.dist.port
            assert not await intruder.run(lambda: pj.node.ping(a.name))
            assert await b.run(lambda: pj.node.ping(a.name))
            nursery.cancel_scope.cancel()


async def raw_connect(node: LocalNode) -> trio.SocketStream:
    assert node.dist is not None
    return await trio.open_tcp_stream("127.0.0.1", node.dist.port)


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything ``stream`` receives until the node closes it; then closes our end too."""
    data = b""
    try:
        with trio.fail_after(20):
            while chunk := await stream.receive_some(65536):
                data += chunk
    finally:
        await stream.aclose()
    return data


@pytest.mark.parametrize(
    "junk",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00\x00",  # empty handshake message
        b"\xff\xff" + bytes(100),  # oversized handshake message, truncated
        b"\x00\x10N\x00",  # truncated name message
        struct.pack(">H", 7) + b"n\x00\x05\x00\x00\x00\x00",  # version 5 without flags we need
    ],
)
async def test_junk_handshakes_close_only_that_connection(junk: bytes) -> None:
    async with local_nodes(2, handshake_timeout=3) as (a, b):
        stream = await raw_connect(a)
        await stream.send_all(junk)
        await read_until_closed(stream)
        assert await b.run(lambda: pj.node.ping(a.name))


async def test_missing_flags_get_not_allowed() -> None:
    async with local_nodes(1) as (a,):
        stream = await raw_connect(a)
        machine = hs.Handshake(initiator=True, cookie=b"test-cookie")
        await stream.send_all(machine.send(hs.SendName("old@localhost", MANDATORY & ~DFLAG_HANDSHAKE_23, 1)))
        machine.receive_data(await read_until_closed(stream))
        assert machine.next_event() == hs.Status("not_allowed")


async def test_silent_handshake_times_out() -> None:
    async with local_nodes(1, handshake_timeout=0.5) as (a,):
        stream = await raw_connect(a)
        assert await read_until_closed(stream) == b""


async def handshaken(node: LocalNode, name: str) -> tuple[trio.SocketStream, hs.Handshake]:
    """A raw TCP connection that completed the handshake with ``node`` as ``name``."""
    stream = await raw_connect(node)
    machine = hs.Handshake(initiator=True, cookie=b"test-cookie")
    await stream.send_all(machine.send(hs.SendName(name, ADVERTISED, 5)))
    while machine.state is not hs.CONNECTED:
        if machine.state is hs.SEND_CHALLENGE_REPLY:
            await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
            continue
        event = machine.next_event()
        if event is NEED_DATA:
            machine.receive_data(await stream.receive_some(4096))
    return stream, machine


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">I", 1 << 30),  # oversized frame
        struct.pack(">I", 3) + b"\x83D\x00",  # no control message
        struct.pack(">I", 5) + b"\x83D\x00\x61\x01",  # control message is not a tuple
        struct.pack(">I", 2) + b"zz",  # unknown header
    ],
)
async def test_bad_frames_close_only_that_connection(frame: bytes) -> None:
    async with local_nodes(2, max_frame_size=1 << 20) as (a, b):
        stream, _ = await handshaken(a, "raw@localhost")
        await stream.send_all(frame)
        await read_until_closed(stream)
        assert await b.run(lambda: pj.node.ping(a.name))


async def test_unknown_control_is_ignored() -> None:
    async with local_nodes(1) as (a,):
        stream, machine = await handshaken(a, "raw@localhost")
        body = b"\x83D\x00" + term_to_binary((99, Atom("future")))[1:]
        await stream.send_all(struct.pack(">I", len(body)) + body + b"\x00\x00\x00\x00")
        # The connection is still served: a monitor of a missing name is answered with noproc.
        conn = Connection(machine.flags)
        me = Pid("raw@localhost", 1, 0, 5)
        ref = Reference("raw@localhost", 5, (1, 2, 3))
        await stream.send_all(conn.send(c.MonitorP(me, Atom("nosuch"), ref)))
        with trio.fail_after(10):
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    conn.receive_data(await stream.receive_some(4096))
                elif not isinstance(event, Tick):
                    break
        assert event == c.MonitorPExit(Atom("nosuch"), me, ref, Atom("noproc"))
        await stream.aclose()


async def test_silent_peer_is_dropped_after_net_ticktime() -> None:
    async with local_nodes(1, net_ticktime=0.4) as (a,):
        stream, _ = await handshaken(a, "mute@localhost")
        data = await read_until_closed(stream)  # the node ticks, then gives up on us
        assert data.startswith(b"\x00\x00\x00\x00")


async def test_node_api_without_distribution() -> None:
    async def main() -> list[object]:
        out: list[object] = [pj.node.name(), pj.node.nodes()]
        with pytest.raises(NotDistributedError):
            await pj.node.connect("x@y")
        return out

    from philipjose.actors import run_async

    assert await run_async(main) == [Atom("nonode@nohost"), []]


def test_run_rejects_options_without_a_node() -> None:
    async def main() -> None:
        pass

    with pytest.raises(NodeConfigError):
        pj.run(main, cookie="x")


def test_run_with_a_node(tmp_path: object) -> None:
    async def main() -> tuple[object, object]:
        return pj.node.name(), pj.self().node

    name, pid_node = pj.run(main, node="solo@localhost", cookie="c", epmd=False, listen_host="127.0.0.1")
    assert name == Atom("solo@localhost") == pid_node
