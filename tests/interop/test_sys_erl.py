"""``sys`` system messages and ``supervisor`` calls from a real ``erl`` to a philipjose node: every
case runs against the Python GenServer/supervisor and an Erlang gen_server/supervisor in the same
erl node, and the outcomes must be the same (``tests/interop/erl/pj_sys.erl``); then ``pj.sys`` from
Python against the Erlang gen_server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import philipjose as pj
from philipjose import Atom, Pid, rpc, supervisors
from tests.node.support import unique
from tests.tools import require

from .dist_support import COOKIE, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

SOURCE = Path(__file__).parent / "erl" / "pj_sys.erl"


async def _idle() -> None:
    await pj.receive()


def start_worker() -> tuple[Atom, Pid]:
    """``pysup:start_worker/0``: the start an Erlang child spec names (OTP's ``{ok, Pid}`` return)."""
    return Atom("ok"), pj.spawn_link(_idle)


async def worker_body() -> None:
    await pj.receive()


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beam")
    subprocess.run([require("erlc"), "-o", str(out), str(SOURCE)], check=True)
    return out


@pytest.fixture
def exposed() -> Iterator[None]:
    rpc.expose("pysup", {"start_worker": start_worker})
    yield
    rpc.unexpose("pysup")


async def test_erl_sys_and_supervisor_calls_match_otp(beam_dir: Path, exposed: None) -> None:
    erl = require("erl")
    async with private_epmd() as epmd, python_node(epmd) as py:

        async def start_top() -> Pid:
            spec = {"id": "worker", "start": worker_body, "modules": ["pj_sys"]}
            return await supervisors.start([spec], name="app_top")

        await py.run(start_top)
        name = unique("erl")
        argv = [erl, "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam_dir)]
        argv += ["-run", "pj_sys", "main", py.name]
        async with start_peer(argv, epmd, name) as peer:
            await peer.line("READY", timeout=60)
            await peer.line("DONE", timeout=120)
            results = {
                line.split()[1]: line.split(maxsplit=2)[2] for line in peer.lines if line.startswith("CHECK ")
            }
            assert len(results) == 54, results
            bad = {k: v for k, v in results.items() if v != "ok"}
            assert bad == {}, "\n".join(f"{k}: {v}" for k, v in bad.items())

            async def from_python() -> list[Any]:
                target = ("pj_counter", name)
                out: list[Any] = [await pj.sys.get_state(target)]
                await pj.sys.suspend(target)
                status = await pj.sys.get_status(target)
                out.append(status[3][1])
                try:
                    await pj.call(target, Atom("get"), timeout=0.2)
                except TimeoutError:
                    out.append("timeout")
                await pj.sys.resume(target)
                out.append(await pj.call(target, Atom("inc")))
                try:
                    await pj.sys.change_code(target, "pj_sys", None, [])
                except pj.sys.SysError as exc:
                    out.append(exc.reason[0])
                return out

            assert await py.run(from_python) == [
                {b"n": 0},
                Atom("suspended"),
                "timeout",
                1,
                Atom("unknown_system_msg"),
            ]
