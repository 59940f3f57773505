"""Send back-pressure against real OTP (issue 13): a peer node that stops reading (a real ``erl``,
frozen with SIGSTOP) holds back a philipjose sender, as OTP holds back an ``erl`` sender to the same
stopped peer (``erlang:process_info(P, status)`` is ``suspended``); both go on after SIGCONT."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from tests.interop.dist_support import COOKIE, private_epmd, start_peer
from tests.node.support import LocalNode, unique
from tests.node.test_backpressure import stalled, wait_for_status
from tests.tools import require

pytestmark = pytest.mark.interop

#: The stopped peer: a sink that throws messages away.
PEER = 'register(sink, spawn(fun L() -> receive _ -> L() end end)), io:format("READY~n").'

#: The OTP sender: once told ``go``, a process sends 20,000 1 KiB binaries to the stopped peer's sink
#: while the node reports its status; told ``check``, it says whether the process got through.
SENDER = """
B = 'PEER_NAME',
pong = net_adm:ping(B),
register(ctl, self()),
io:format("READY~n"),
receive go -> ok end,
Bin = binary:copy(<<0>>, 1024),
Me = self(),
P = spawn(fun() -> L = fun F(0) -> Me ! sent; F(K) -> {sink, B} ! Bin, F(K - 1) end, L(20000) end),
W = fun W(0) -> timeout;
        W(K) -> case erlang:process_info(P, status) of
                    {status, suspended} -> suspended;
                    undefined -> finished;
                    _ -> timer:sleep(10), W(K - 1)
                end
    end,
io:format("STATUS ~p~n", [W(2000)]),
receive check -> ok end,
receive sent -> io:format("RESUMED~n") after 30000 -> io:format("STUCK~n") end,
halt().
"""


async def test_a_stopped_erl_peer_holds_back_python_and_erl_senders() -> None:
    erl = require("erl")
    n = 200_000  # 100-byte messages: far more than the kernel's socket buffers take
    async with private_epmd() as epmd_port:
        peer_name = unique("bpstop")
        sender_name = unique("bpsend")
        stop_argv = [erl, "-noshell", "-sname", peer_name, "-setcookie", COOKIE, "-eval", PEER]
        async with start_peer(stop_argv, epmd_port, peer_name) as stopped:
            await stopped.line("READY")
            code = SENDER.replace("PEER_NAME", peer_name)
            send_argv = [erl, "-noshell", "-sname", sender_name, "-setcookie", COOKIE, "-eval", code]
            async with start_peer(send_argv, epmd_port, sender_name) as otp:
                await otp.line("READY")
                node = LocalNode(
                    unique("bppy"), {"cookie": COOKIE, "epmd_port": epmd_port, "listen_host": "127.0.0.1"}
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(node.serve)
                    assert node.dist is not None
                    dist = node.dist
                    assert await node.run(pj.node.ping, peer_name)
                    proc = psutil.Process(stopped.process.pid)
                    os.kill(stopped.process.pid, signal.SIGSTOP)
                    try:
                        with trio.fail_after(10):
                            while proc.status() != psutil.STATUS_STOPPED:
                                await trio.sleep(0.01)  # bounded poll of the OS process state
                        sent = 0
                        pids: list[Pid] = []
                        started = trio.Event()
                        done = trio.Event()

                        async def python_sender() -> None:
                            nonlocal sent
                            pids.append(pj.self())
                            started.set()
                            for _ in range(n):
                                await pj.send_wait(("sink", peer_name), bytes(100))
                                sent += 1
                            done.set()

                        async def spawn_sender() -> None:
                            pj.spawn(python_sender)

                        await node.run(spawn_sender)
                        await started.wait()
                        await node.run(wait_for_status, pids[0], "suspended")
                        held = await stalled(lambda: sent)
                        assert held < n
                        peer = dist.peers[Atom(peer_name)]
                        limit = dist.dist_buf_busy_limit
                        assert limit // 2 < peer.queued < 2 * limit  # busy (until drained to half)
                        # OTP's sender to the same stopped node is suspended as well.
                        await node.run(_send, (Atom("ctl"), Atom(sender_name)), Atom("go"))
                        assert await otp.line("STATUS", timeout=30) == "suspended"
                    finally:
                        os.kill(stopped.process.pid, signal.SIGCONT)
                    await node.run(_send, (Atom("ctl"), Atom(sender_name)), Atom("check"))
                    with trio.fail_after(60):
                        await done.wait()
                    assert sent == n
                    await otp.line("RESUMED", timeout=30)
                    assert Atom(peer_name) in dist.nodes()
                    nursery.cancel_scope.cancel()


async def _send(dest: object, msg: object) -> None:
    pj.send(dest, msg)
