"""Send back-pressure (issue 13, finding 4): a connection whose peer does not read holds its senders
back, as OTP suspends a process sending to a busy dist port, and the node's memory stays bounded.

The peer here is a raw socket client (:class:`RawPeer`): it completes the handshake with the
sans-I/O :class:`~philipjose.node.handshake.Handshake` and then reads only when told to, sending a
tick now and then so the node keeps it. The node under test runs in the test's Trio run
(:mod:`tests.node.support`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psutil
import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from philipjose.node import Node
from philipjose.node.flags import ADVERTISED
from philipjose.node.handshake import Challenge, Handshake, SendName, Status
from philipjose.node.sentinels import NEED_DATA
from tests.node.support import LocalNode, local_nodes, unique

COOKIE = "test-cookie"
PAYLOAD = bytes(100)


class RawPeer:
    """A test-only distribution peer on a raw socket: it handshakes, then reads only on demand.

    ``received`` counts the bytes read after the handshake; ``frames`` and ``ticks`` count the
    frames parsed out of them (a tick is a zero-length frame).
    """

    def __init__(self, name: str, stream: trio.abc.Stream, creation: int, rest: bytes) -> None:
        self.name = name
        self.stream = stream
        self.creation = creation
        self.received = 0
        self.frames = 0
        self.ticks = 0
        self._buf = bytearray(rest)

    @classmethod
    async def connect(cls, node: Node, tls: ssl.SSLContext | None = None) -> RawPeer:
        """Connect to ``node`` and handshake; with ``tls`` (a client context), inside TLS."""
        name = unique("raw")
        creation = secrets.randbelow(1 << 30) + 4
        stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", node.port)
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_hostname="localhost")
            await stream.do_handshake()
        machine = Handshake(initiator=True, cookie=COOKIE.encode(), length_size=2 if tls is None else 4)

        async def event() -> Any:
            while True:
                ev = machine.next_event()
                if ev is not NEED_DATA:
                    return ev
                data = await stream.receive_some(4096)
                assert data, "the node closed the connection during the handshake"
                machine.receive_data(data)

        await stream.send_all(machine.send(SendName(name, ADVERTISED, creation)))
        status = await event()
        assert isinstance(status, Status) and status.status == "ok", status
        challenge = await event()
        assert isinstance(challenge, Challenge)
        await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
        await event()  # the ack, its digest checked by the machine
        return cls(name, stream, creation, machine.trailing_data)

    def pid(self) -> Pid:
        """A pid of this peer for the node to send to (no process behind it: nothing reads it)."""
        return Pid(Atom(self.name), 1, 0, self.creation)

    async def tick_forever(self, interval: float) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            while True:
                await self.stream.send_all(b"\0\0\0\0")
                await trio.sleep(interval)

    async def read(self, max_bytes: int = 1 << 16) -> None:
        """Read one chunk and count the frames in it."""
        data = await self.stream.receive_some(max_bytes)
        assert data, "the node closed the connection"
        self.received += len(data)
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        frames = ticks = 0
        while end - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if end - pos - 4 < size:
                break
            pos += 4 + size
            if size:
                frames += 1
            else:
                ticks += 1
        del buf[:pos]
        self.frames += frames
        self.ticks += ticks


@contextlib.asynccontextmanager
async def node_and_peer(
    client_tls: ssl.SSLContext | None = None, **options: Any
) -> AsyncIterator[tuple[LocalNode, Node, RawPeer]]:
    async with local_nodes(1, **options) as (node,), trio.open_nursery() as nursery:
        assert node.dist is not None
        peer = await RawPeer.connect(node.dist, client_tls)
        with trio.fail_after(10):
            while Atom(peer.name) not in node.dist.nodes():
                await trio.sleep(0.01)  # bounded poll: the node has no event for an accepted peer
        nursery.start_soon(peer.tick_forever, 0.2)
        try:
            yield node, node.dist, peer
        finally:
            nursery.cancel_scope.cancel()
            await trio.aclose_forcefully(peer.stream)


def queued(dist: Node, peer: RawPeer) -> int:
    return dist.peers[Atom(peer.name)].queued


async def wait_for_status(pid: Pid, status: str, timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while (pj.process_info(pid) or {}).get("status") != status:
            await trio.sleep(0.01)  # bounded poll of process_info (no event tells a status change)


async def stalled(progress: Callable[[], int], timeout: float = 20) -> int:
    """Wait until ``progress()`` stays the same for 0.3 s (the kernel's socket buffers take a few
    hundred KiB of a non-reading peer's data before the node must queue); return it."""
    with trio.fail_after(timeout):
        while True:
            before = progress()
            await trio.sleep(0.3)  # bounded poll of a counter: nothing signals "nothing happened"
            if progress() == before:
                return before


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def test_two_million_messages_to_a_peer_that_does_not_read() -> None:
    """Acceptance: 2,000,000 100-byte messages to a peer that stops reading: RSS grows by less than
    300 MB, the sender is held back (suspended) while the peer does not read and resumes when it
    does, and the connection survives a slow-reading spell longer than net_ticktime."""
    n = 2_000_000
    gc.collect()
    async with node_and_peer(net_ticktime=2.0) as (node, dist, peer):
        dest = peer.pid()
        limit = dist.dist_buf_busy_limit
        assert limit == 1 << 20
        base = _rss()
        peak = base
        done = trio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss())
                await trio.sleep(0.02)

        pids: list[Pid] = []
        started = trio.Event()
        sent = 0

        async def sender() -> int:
            nonlocal sent
            pids.append(pj.self())
            started.set()
            for _ in range(n):
                await pj.send_wait(dest, PAYLOAD)
                sent += 1
            return n

        async def run_sender() -> None:
            assert await node.run(sender, timeout=120) == n
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            nursery.start_soon(run_sender)
            await started.wait()
            pid = pids[0]
            # The peer does not read: the sender is held back once the buffer is full.
            await node.run(wait_for_status, pid, "suspended")
            held = await stalled(lambda: sent)
            assert held < n // 10
            assert await node.run(_status, pid) == "suspended"
            assert dist.busy(Atom(peer.name))
            assert limit // 2 < queued(dist, peer) < 2 * limit  # busy (until drained to half)
            t0 = time.monotonic()
            await trio.sleep(2.5)  # longer than net_ticktime, still not reading
            assert await node.run(_status, pid) == "suspended"
            assert sent == held  # nothing more was sent meanwhile
            # Read slowly for longer than net_ticktime: the sender goes on in small steps.
            while time.monotonic() - t0 < 5.5:
                await peer.read(1 << 14)
                await trio.sleep(0.005)
            assert Atom(peer.name) in dist.nodes(), "the connection was dropped while the peer read slowly"
            assert peer.frames > 0
            # Then read at full speed until everything has come.
            with trio.fail_after(90):
                while peer.frames < n:
                    await peer.read()
            await done.wait()
            # The connection is idle now: the node ticks again.
            ticks = peer.ticks
            with trio.fail_after(5):
                while peer.ticks == ticks:
                    await peer.read()
        assert Atom(peer.name) in dist.nodes()
        growth = peak - base
        print(f"RSS growth {growth / 2**20:.1f} MiB, {peer.received} bytes received")
        assert growth < 300 * 2**20


async def _status(pid: Pid) -> str | None:
    info = pj.process_info(pid)
    return None if info is None else str(info["status"])


async def held_then_drained(
    node: LocalNode, dist: Node, peer: RawPeer, send_one: Callable[[int], Awaitable[None]], n: int, upper: int
) -> None:
    """Run a process that awaits ``send_one(i)`` for ``i`` in ``range(n)`` while ``peer`` does not
    read: check that it is held (suspended, its sends stalled, the connection busy with between half
    the limit and ``upper`` bytes queued); then read everything and check that it finished."""
    pids: list[Pid] = []
    started = trio.Event()
    sent = 0
    result: list[int] = []

    async def sender() -> int:
        nonlocal sent
        pids.append(pj.self())
        started.set()
        for i in range(n):
            await send_one(i)
            sent += 1
        return n

    async def run() -> None:
        result.append(await node.run(sender))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await started.wait()
        await node.run(wait_for_status, pids[0], "suspended")
        assert await stalled(lambda: sent) < n
        assert await node.run(_status, pids[0]) == "suspended"
        assert dist.busy(Atom(peer.name))
        assert dist.dist_buf_busy_limit // 2 < queued(dist, peer) < upper
        with trio.fail_after(30):
            while peer.frames < n:
                await peer.read()
    assert result == [n]


async def test_pj_send_holds_the_sender_at_its_next_receive() -> None:
    """Plain ``pj.send`` queues the message and returns; the process waits at its next receive
    (status ``suspended``) until the peer has read enough, then goes on."""
    limit = 64 * 1024
    n = 60_000  # ~11 MB: more than the kernel's socket buffers take before the node must queue
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()

        async def send_then_receive(i: int) -> None:
            pj.send(dest, PAYLOAD)
            pj.send(pj.self(), i)
            assert await pj.receive() == i

        # busy; at most one message past the limit
        await held_then_drained(node, dist, peer, send_then_receive, n, limit + 1024)


async def test_a_sender_that_never_awaits_gets_busy_at_the_hard_limit() -> None:
    """A loop of ``pj.send`` that never awaits stops with Busy once it has sent 64 x the limit past
    the point where it was held; nothing is lost silently: every message before the error was
    queued, the failed one was not."""
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()

        async def flood() -> tuple[int, int]:
            sent = 0
            try:
                while True:
                    pj.send(dest, PAYLOAD)
                    sent += 1
            except pj.Busy as exc:
                assert exc.node == Atom(peer.name)
                assert isinstance(exc, BlockingIOError)
                return sent, queued(dist, peer)

        sent, at = await node.run(flood)
        assert 65 * limit < at < 65 * limit + 1024
        with trio.fail_after(20):
            while peer.frames < sent:
                await peer.read()
        assert peer.frames == sent


async def test_the_hard_limit_counts_each_held_sender_apart() -> None:
    """Two held senders taking turns each get 64 x the limit before one is refused (the node keeps
    a count per sender, the latest one aside from the others)."""
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()
        here = dist.name
        senders = [Pid(here, 9001, 0, dist.creation), Pid(here, 9002, 0, dist.creation)]

        async def flood() -> tuple[int, int]:
            sent = 0
            try:
                while True:
                    dist.send(senders[sent % 2], dest, PAYLOAD)  # the hook the runtime calls
                    sent += 1
            except pj.Busy:
                return sent, queued(dist, peer)

        sent, at = await node.run(flood)
        assert 129 * limit < at < 129 * limit + 1024  # limit + 2 x 64 x limit
        with trio.fail_after(20):
            while peer.frames < sent:
                await peer.read()


async def test_large_messages_and_system_tasks_are_never_refused() -> None:
    """A message of at least the limit is always queued, and a task that is not a process is never
    refused: 4 MiB of 32 KiB messages, then 4 MiB of small ones from a system task, all queued,
    with a limit of 16 KiB (hard limit 1 MiB)."""
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()
        big = bytes(2 * limit)
        counts: list[int] = []

        async def large() -> None:
            for _ in range(128):
                pj.send(dest, big)
            assert dist.busy(Atom(peer.name)) and queued(dist, peer) > 64 * limit

        async def system_flood() -> None:
            for _ in range(40_000):
                pj.send(dest, PAYLOAD)
            counts.append(queued(dist, peer))

        async def flood_from_a_system_task() -> None:
            dist.rt.start_system_task(system_flood)

        await node.run(large)
        await node.run(flood_from_a_system_task)
        with trio.fail_after(30):
            while peer.frames < 128 + 40_000:
                await peer.read()
        assert counts and counts[0] > 4 * 2**20 + 40_000 * len(PAYLOAD)


async def test_send_nowait_refuses_on_a_busy_connection() -> None:
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()

        async def job() -> tuple[int, str]:
            sent = 0
            try:
                while True:
                    pj.send_nowait(dest, PAYLOAD)
                    sent += 1
            except pj.Busy:
                pass
            assert queued(dist, peer) > limit
            with pytest.raises(pj.Busy):
                pj.send_nowait((Atom("any"), Atom(peer.name)), PAYLOAD)
            pj.send_nowait(pj.self(), "local")  # local destinations are never busy
            assert await pj.receive(timeout=0) == "local"
            info = pj.process_info(pj.self())
            assert info is not None
            return sent, str(info["status"])

        sent, status = await node.run(job)
        assert status == "running"  # never held back
        assert sent * len(PAYLOAD) < limit + 2048  # it stopped at the first message past the limit
        with trio.fail_after(20):
            while peer.frames < sent:
                await peer.read()


async def test_control_signals_and_local_sends_are_never_held() -> None:
    """While the connection is busy, links, unlinks and exit signals to the peer still go out at
    once, however many (past the hard limit too), and local sends are not held."""
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()

        async def job() -> str:
            with contextlib.suppress(pj.Busy):
                while True:
                    pj.send_nowait(dest, PAYLOAD)
            await pj.send_wait(pj.self(), "local")  # not held: a local destination
            assert await pj.receive(timeout=0) == "local"
            for i in range(20_000):  # ~80 bytes each: far past 64 x the limit
                pj.link(Pid(Atom(peer.name), 100 + i, 0, peer.creation))
            assert queued(dist, peer) > 64 * limit
            info = pj.process_info(pj.self())
            assert info is not None
            return str(info["status"])

        pj_status = await node.run(job, timeout=60)
        assert pj_status == "running"


async def test_a_system_task_waits_with_send_wait() -> None:
    """A task that is not a process is held back by ``send_wait`` too."""
    limit = 16 * 1024
    n = 60_000
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()
        rt = dist.rt
        sent = 0
        finished = trio.Event()

        async def system_sender() -> None:
            nonlocal sent
            for _ in range(n):
                await pj.send_wait(dest, PAYLOAD)
                sent += 1
            finished.set()

        async def start() -> None:
            rt.start_system_task(system_sender)  # from a process: the task runs in the runtime

        await node.run(start)
        held = await stalled(lambda: sent)
        assert held < n and dist.busy(Atom(peer.name))
        assert limit // 2 < queued(dist, peer) < limit + 1024
        with trio.fail_after(30):
            while peer.frames < n:
                await peer.read()
        await finished.wait()


async def test_the_hold_ends_when_the_connection_goes() -> None:
    """A sender held by a connection that then closes goes on (its messages are lost with the
    connection, as in OTP, and links across it fire noconnection)."""
    limit = 16 * 1024
    async with node_and_peer(dist_buf_busy_limit=limit) as (node, dist, peer):
        dest = peer.pid()

        async def job() -> str:
            for _ in range(100_000):
                await pj.send_wait(dest, PAYLOAD)
            return "done"

        async with trio.open_nursery() as nursery:
            result: list[str] = []

            async def run() -> None:
                result.append(await node.run(job))

            nursery.start_soon(run)
            with trio.fail_after(10):
                while not dist.busy(Atom(peer.name)):
                    await trio.sleep(0.01)  # bounded poll
            await peer.stream.aclose()
        assert result == ["done"]
        assert Atom(peer.name) not in dist.nodes()


async def test_a_connection_being_set_up_holds_its_senders() -> None:
    """Messages to a node whose handshake hangs wait in a list; past dist_buf_busy_limit / 256 of them
    the sender is held until the attempt fails (handshake_timeout), then goes on."""
    limit = 64 * 1024  # 256 waiting messages
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, _silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with local_nodes(1, dist_buf_busy_limit=limit, handshake_timeout=1.5) as (node,):
            assert node.dist is not None
            dist = node.dist
            name = unique("hang")
            dist.peer_ports[name] = port
            dest = Pid(Atom(name), 1, 0, 1)
            most = 0

            async def sender() -> tuple[float, bool]:
                nonlocal most
                t0 = trio.current_time()
                for _ in range(256):
                    await pj.send_wait(dest, PAYLOAD)
                    most = max(most, len(dist.peers[Atom(name)].pending))
                assert not dist.busy(Atom(name))
                pj.send(dest, PAYLOAD)  # the 257th: held (at the next checkpoint)
                busy = dist.busy(Atom(name))
                with contextlib.suppress(pj.Busy):
                    pj.send_nowait(dest, PAYLOAD)
                    raise AssertionError("send_nowait did not refuse")
                await pj.send_wait(pj.self(), "after")  # waits for the attempt to fail
                assert await pj.receive() == "after"
                return trio.current_time() - t0, busy

            took, busy = await node.run(sender)
            assert busy and most == 256
            assert took >= 1.5
            assert Atom(name) not in dist.peers  # the attempt failed and was forgotten
        nursery.cancel_scope.cancel()


async def _silent(stream: trio.SocketStream) -> None:
    """A listener that accepts and never answers (a handshake that hangs)."""
    async with stream:
        await trio.sleep_forever()


def test_the_option_is_checked() -> None:
    async def main() -> None:
        bad: Any
        for bad in (0, -1, 1.5, "1M", True):
            with pytest.raises(pj.node.NodeConfigError, match="dist_buf_busy_limit"):
                await pj.node.start(unique("bad"), cookie=COOKIE, epmd=False, dist_buf_busy_limit=bad)
        dist = await pj.node.start(unique("good"), cookie=COOKIE, epmd=False, dist_buf_busy_limit=4096)
        assert dist.dist_buf_busy_limit == 4096

    pj.run(main)
