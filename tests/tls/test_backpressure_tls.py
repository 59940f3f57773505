"""Send back-pressure over TLS distribution (issue 13): the same hold as over plain TCP, with the
writer going through ``trio.SSLStream``."""

from __future__ import annotations

import trio

import philipjose as pj
from philipjose import Atom, Pid
from tests.node.test_backpressure import PAYLOAD, node_and_peer, queued, stalled, wait_for_status
from tests.tls.certs import PKI
from tests.tls.support import node_tls


async def test_a_tls_peer_that_does_not_read_holds_the_sender(pki: PKI) -> None:
    limit = 64 * 1024
    n = 60_000
    config = node_tls(pki.good)
    async with node_and_peer(config.client, dist_buf_busy_limit=limit, tls=config) as (node, dist, peer):
        dest = peer.pid()
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

        async with trio.open_nursery() as nursery:
            result: list[int] = []

            async def run() -> None:
                result.append(await node.run(sender))

            nursery.start_soon(run)
            await started.wait()
            await node.run(wait_for_status, pids[0], "suspended")
            held = await stalled(lambda: sent)
            assert held < n
            assert dist.busy(Atom(peer.name))
            assert limit // 2 < queued(dist, peer) < 2 * limit  # busy (until drained to half)
            with trio.fail_after(30):
                while peer.frames < n:
                    await peer.read()
        assert result == [n]
