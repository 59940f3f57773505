"""Spoofed ``alive`` inside TLS: a certificate from the same CA but the wrong cookie disturbs nothing.

Issue 13's attack worked over TLS with any certificate the node's CA signed; the connection the
attacker names must survive it, as over plain TCP (``tests/node/test_hostile_handshake.py``).
"""

from __future__ import annotations

import pytest

import philipjose as pj
from philipjose import Atom
from tests.node.hostile import spoof
from tests.node.support import local_nodes

from .certs import PKI
from .support import node_tls


async def test_spoofed_alive_over_tls_with_a_good_certificate_changes_nothing(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    async with local_nodes(2, tls=node_tls(pki.good)) as (a, b):
        assert a.dist is not None
        assert await a.run(pj.node.ping, b.name)
        before = a.dist.peers[Atom(b.name)]
        client = node_tls(pki.good).client  # the attacker holds a certificate of the same CA
        for _ in range(3):
            outcome = await spoof(a.dist.port, b.name, tls=client)
            assert outcome.status == "alive" and outcome.challenged, outcome
            assert outcome.closed and not outcome.acked, outcome
        assert a.dist.peers[Atom(b.name)] is before and before.up
        assert await a.run(pj.node.ping, b.name)
    assert caplog.text.count(f"(claims to be {b.name}): wrong cookie") == 3
