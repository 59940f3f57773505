"""Workers that start on their own, over TLS: a TLS farm takes a joining worker and the workers of a
TLS server (which passes its certificates on to them); a joiner without TLS is refused."""

from __future__ import annotations

from philipjose import farm
from tests.farm._tasks import square
from tests.farm.conftest import _free_port
from tests.farm.test_elastic import COOKIE, Procs, _exit_status, _server_up, procs  # noqa: F401 (a fixture)

from .certs import PKI
from .support import node_tls


async def test_joined_and_server_workers_over_tls(procs: Procs, pki: PKI) -> None:  # noqa: F811
    tls = node_tls(pki.good)
    assert tls.files is not None
    args = tls.files.argv()  # the --tls-* options the farm would give its own workers
    port = _free_port()
    server = procs.start("worker", "--listen", f"127.0.0.1:{port}", "--slots", "1", *args)
    await _server_up(server)
    async with farm.Farm(
        workers=0,
        accept_workers=True,
        servers=[f"127.0.0.1:{port}"],
        cookie=COOKIE,
        tls=tls,
        farmer_host="127.0.0.1",
    ) as f:
        status, err = await _exit_status(procs.join(f.node))  # no TLS: the farmer's node refuses it
        assert status == 1 and "cannot connect to the farmer" in err, err
        procs.start("worker", "--join", f.node, *args)
        await f.wait_for_workers(2, timeout=60)
        assert sorted(w.came for w in f.workers) == ["joined", "server"]
        assert await f.map(square, range(50)) == [x * x for x in range(50)]
