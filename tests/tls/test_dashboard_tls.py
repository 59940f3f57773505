"""A TLS farm's dashboard: its connections say TLS, and count the bytes the TLS streams carried."""

from __future__ import annotations

from philipjose import farm
from tests.dashboard.client import get

from .certs import PKI
from .support import node_tls


def double(x: int) -> int:
    return 2 * x


async def test_a_tls_farms_connections_show_tls_and_their_bytes(pki: PKI) -> None:
    # lanes=False: the tasks go over the TLS connection, not through the local worker's lane
    async with farm.Farm(workers=1, tls=node_tls(pki.good), dashboard=0, lanes=False) as f:
        assert await f.map(double, range(200)) == [2 * x for x in range(200)]
        assert f.dashboard_url is not None
        data = await get(f.dashboard_url + "api/node")
        [link] = data["connections"]
        assert link["node"] == f.workers[0].node and link["tls"] and link["state"] == "up"
        assert link["bytes_in"] > 10_000 and link["bytes_out"] > 10_000
