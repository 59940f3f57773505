"""Send back-pressure over TLS distribution (issue 13): the same hold as over plain TCP, with the
writer going through ``trio.SSLStream``."""

from __future__ import annotations

import philipjose as pj
from tests.node.test_backpressure import PAYLOAD, held_then_drained, node_and_peer
from tests.tls.certs import PKI
from tests.tls.support import node_tls


async def test_a_tls_peer_that_does_not_read_holds_the_sender(pki: PKI) -> None:
    limit = 64 * 1024
    config = node_tls(pki.good)
    async with node_and_peer(config.client, dist_buf_busy_limit=limit, tls=config) as (node, dist, peer):
        dest = peer.pid()

        async def send_wait(_: int) -> None:
            await pj.send_wait(dest, PAYLOAD)

        # busy (until drained to half)
        await held_then_drained(node, dist, peer, send_wait, 60_000, 2 * limit)
