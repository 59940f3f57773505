"""Support for the TLS tests: real ``erl`` nodes with ``-proto_dist inet_tls`` and Python TLS nodes."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from philipjose.node.tls import TLSConfig, tls_config
from tests.interop.dist_support import COOKIE, Peer, start_peer
from tests.node.support import unique
from tests.tools import Otp, require

from .certs import NodeFiles, write_optfile

PEER_SOURCE = Path(__file__).parent / "erl" / "pj_tls_peer.erl"


def compile_peer(out: Path, otp: Otp | None = None) -> Path:
    """Compile ``pj_tls_peer.erl`` into ``out`` with ``otp``'s ``erlc`` (default: the test's)."""
    subprocess.run([require("erlc", otp), "-o", str(out), str(PEER_SOURCE)], check=True)
    return out


def node_tls(files: NodeFiles, verify: str = "peer") -> TLSConfig:
    """A philipjose :class:`TLSConfig` for ``files``."""
    return tls_config(files.certfile, files.keyfile, files.cafile, verify=verify)


@asynccontextmanager
async def erl_node(
    beam_dir: Path,
    epmd_port: int,
    py_node: str,
    scenario: str,
    *,
    files: NodeFiles | None,
    cookie: str = COOKIE,
) -> AsyncIterator[Peer]:
    """``erl`` running ``pj_tls_peer:main([py_node, scenario])``: with ``files``, a TLS node
    (``-proto_dist inet_tls``, an optfile with verify_peer and fail_if_no_peer_cert both sides);
    without, a plain TCP node. Waits for its READY line."""
    erl = require("erl")
    name = unique("erl")
    argv = [erl, "-noshell", "-sname", name, "-setcookie", cookie, "-pa", str(beam_dir)]
    if files is not None:
        optfile = write_optfile(beam_dir / f"{name.partition('@')[0]}.optfile", files)
        argv += ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]
    argv += ["-run", "pj_tls_peer", "main", py_node, scenario]
    async with start_peer(argv, epmd_port, name) as peer:
        assert await peer.line("PROTO ") == ("tcp" if files is None else "tls")
        await peer.line("READY")
        yield peer
