"""The farmer's node and EPMD: registered by default (so a running farm is visible to Erlang
tools), absent with ``epmd=False``; workers never need an EPMD either way."""

from __future__ import annotations

import pytest
import trio

from philipjose import epmd, farm


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("use_epmd", [True, False])
async def test_farmer_registers_with_epmd_unless_told_not_to(
    use_epmd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(epmd.serve, 0, "127.0.0.1")
        monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
        with trio.fail_after(120):
            async with farm.Farm(workers=1, epmd=use_epmd) as f:
                assert await f.map(_square, range(5)) == [0, 1, 4, 9, 16]
                names = [name for name, _ in await epmd.names()]
        farmers = [name for name in names if name.startswith("farmer-")]
        assert len(farmers) == (1 if use_epmd else 0)
        assert not [name for name in names if not name.startswith("farmer-")]  # workers: none
        nursery.cancel_scope.cancel()
