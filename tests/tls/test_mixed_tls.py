"""A mixed farm over TLS: the farmer's node reaches its Erlang worker, a real ``erl -proto_dist
inet_tls`` node (verify_peer both sides), with TLS, beside a TLS Python worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from philipjose import Atom, farm
from tests.interop.dist_support import COOKIE, private_epmd
from tests.tools import Otp

from .certs import PKI
from .support import compile_peer, erl_node, node_tls

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("otp")]


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_peer(tmp_path_factory.mktemp(f"beam-mixed-{otp}"), otp)


def worker_pid(x: int) -> tuple[int, int]:
    return os.getpid(), x


async def test_a_tls_farm_reaches_its_erlang_worker_with_tls(
    beam_dir: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with private_epmd() as epmd:
        monkeypatch.setenv("ERL_EPMD_PORT", str(epmd))
        async with (
            erl_node(beam_dir, epmd, "nobody@localhost", "idle", files=pki.good) as erl,
            farm.Farm(workers=1, erlang_nodes=[erl.name], cookie=COOKIE, tls=node_tls(pki.good)) as f,
        ):
            nodes = await f.broadcast(farm.erl("erlang", "node"))
            protos = await f.submit(farm.Erl("init", "get_argument", [Atom("proto_dist")]))
            python = await f.map(worker_pid, range(3))
    assert nodes == [Atom(erl.name)]
    assert protos == (Atom("ok"), [[[ord(c) for c in "inet_tls"]]])  # it speaks TLS only
    assert [x for _, x in python] == [0, 1, 2]
