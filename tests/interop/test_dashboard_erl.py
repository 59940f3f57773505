"""The farm's dashboard with real ``erl`` nodes as workers: their rows, and their connections."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from philipjose import farm
from tests.dashboard.client import get

from .dist_support import COOKIE
from .test_farm_erl import TASKS, beam_dir, mixed_setting

pytestmark = pytest.mark.interop
__all__ = ["beam_dir"]  # the fixture, for pytest


async def test_erlang_workers_have_rows_and_connections(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        mixed_setting(beam_dir, monkeypatch, 1) as (a, _),
        farm.Farm(workers=1, erlang_nodes=[a.name], cookie=COOKIE, dashboard=0) as f,
    ):
        assert await f.map(farm.erl(TASKS, "where"), range(50)) != []
        url = f.dashboard_url
        assert url is not None
        with trio.fail_after(30):  # a snapshot is served again for up to 0.25 s
            while True:
                data = await get(url + "api/farm")
                rows = {w["kind"]: w for w in data["workers"]}
                if rows["erlang"]["tasks_done"] >= 50:
                    break
        assert set(rows) == {"python", "erlang"} and len(data["workers"]) == 2
        erl = rows["erlang"]
        assert (erl["slot"], erl["node"], erl["state"]) == ("e0", a.name, "up")
        node = await get(url + "api/node")
        links = {c["node"]: c for c in node["connections"]}
        assert links[a.name]["state"] == "up" and links[a.name]["bytes_in"] > 0
