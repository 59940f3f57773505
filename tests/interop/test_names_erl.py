"""Node names against real ``erl``: dynamic names (``erl -sname undefined``, OTP 23+'s NAME_ME),
short/long name mixing refused by the initiating side as OTP refuses it, and IPv6 (``-proto_dist
inet6_tcp``) reaching a Python node that listens dual-stack by default."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import philipjose as pj
from philipjose import Atom
from philipjose.epmd import serve as serve_epmd
from tests.node.support import LocalNode, unique
from tests.tools import require

from .dist_support import COOKIE, Peer, private_epmd, python_node, serve_example, start_peer

pytestmark = pytest.mark.interop


@asynccontextmanager
async def erl_eval(epmd: int, name_args: list[str], code: str, *extra: str) -> AsyncIterator[Peer]:
    erl = require("erl")
    argv = [erl, "-noshell", *name_args, "-setcookie", COOKIE, *extra, "-eval", code]
    async with start_peer(argv, epmd, name_args[-1]) as peer:
        yield peer


async def test_erl_with_a_dynamic_name_connects_and_pings() -> None:
    async with private_epmd() as epmd, python_node(epmd) as py:
        # a dynamic node has no name until its first connection: net_adm:ping needs one, so connect first
        code = (
            f"C = net_kernel:connect_node('{py.name}'), io:format(\"CONNECT ~p~n\", [C]), "
            f"R = net_adm:ping('{py.name}'), "
            f'io:format("RESULT ~p ~s~n", [R, node()]), '
            f"io:format(\"CALL ~p~n\", [gen_server:call({{counter, '{py.name}'}}, inc)]), "
            "halt()."
        )
        async with erl_eval(epmd, ["-sname", "undefined"], code) as erl:
            assert await erl.line("CONNECT ") == "true"
            result = await erl.line("RESULT ")
            assert await erl.line("CALL ") == "1"
        answer, name = result.split()
        assert answer == "pong"
        alive, _, host = name.partition("@")
        assert host == socket.gethostname().split(".")[0] and alive != "undefined"  # erl's own host
        assert alive.isalnum() and alive.upper() == alive  # base 36, as OTP names it


async def test_two_dynamic_names_from_one_host_differ() -> None:
    async with private_epmd() as epmd, python_node(epmd) as py:
        code = (
            f"true = net_kernel:connect_node('{py.name}'), io:format(\"NAME ~s~n\", [node()]), "
            "receive after infinity -> ok end."
        )
        async with (
            erl_eval(epmd, ["-sname", "undefined"], code) as e1,
            erl_eval(epmd, ["-sname", "undefined"], code) as e2,
        ):
            n1, n2 = await e1.line("NAME "), await e2.line("NAME ")
            assert n1 != n2

            async def nodes() -> list[str]:
                return sorted(str(n) for n in pj.node.nodes("connected"))

            assert await py.run(nodes) == sorted([n1, n2])


@asynccontextmanager
async def long_python_node(epmd: int) -> AsyncIterator[LocalNode]:
    alive = unique("pylong").partition("@")[0]
    node = LocalNode(f"{alive}@127.0.0.1", {"cookie": COOKIE, "epmd_port": epmd, "listen_host": "127.0.0.1"})
    async with trio.open_nursery() as nursery:
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def test_short_and_long_names_do_not_mix_when_python_connects() -> None:
    erl = require("erl")
    async with private_epmd() as epmd:
        long_name = unique("erllong").partition("@")[0] + "@127.0.0.1"
        short_name = unique("erlshort")
        ready = 'io:format("READY~n")'
        async with (
            start_peer(
                [erl, "-noshell", "-name", long_name, "-setcookie", COOKIE, "-eval", ready], epmd, long_name
            ) as lp,
            start_peer(
                [erl, "-noshell", "-sname", short_name, "-setcookie", COOKIE, "-eval", ready],
                epmd,
                short_name,
            ) as sp,
        ):
            await lp.line("READY")
            await sp.line("READY")
            async with python_node(epmd) as short_py, long_python_node(epmd) as long_py:

                async def try_connect(target: str) -> tuple[bool, str]:
                    ok = await pj.node.connect(target)
                    return ok, pj.node.current().connect_errors.get(Atom(target), "")

                # short Python node -> long erl node: refused before any connection, OTP's message
                ok, why = await short_py.run(try_connect, long_name)
                assert not ok and "System NOT running to use fully qualified hostnames" in why
                # long Python node -> short erl node: refused
                ok, why = await long_py.run(try_connect, short_name)
                assert not ok and "System running to use fully qualified hostnames" in why
                # the same-kind connections work
                assert (await short_py.run(try_connect, short_name))[0]
                assert (await long_py.run(try_connect, long_name))[0]
                # OTP refuses the same way: a short erl node cannot reach the long one
                ping = f"net_adm:ping('{long_name}')"
                code = f'io:format("RESULT ~p~n", [{ping}]), receive after infinity -> ok end.'
                async with erl_eval(epmd, ["-sname", unique("erlmix")], code) as probe:
                    assert await probe.line("RESULT ") == "pang"
                    # erl's logger prints the refusal on its own schedule: before or after RESULT
                    refusal = "** System NOT running to use fully qualified hostnames **"
                    if not any(line.startswith(refusal) for line in probe.lines):
                        await probe.line(refusal)


def _inetrc(tmp: Path) -> Path:
    """An inetrc for erl that names ::1 ``ip6host`` (this machine's resolver may know no IPv6 name)."""
    path = tmp / "inetrc"
    path.write_text('{host, {0,0,0,0,0,0,0,1}, ["ip6host"]}.\n{lookup, [file, native]}.\n')
    return path


async def test_erl_over_ipv6_reaches_a_default_python_node(tmp_path: Path) -> None:
    erl = require("erl")
    inetrc = _inetrc(tmp_path)
    async with trio.open_nursery() as nursery:
        epmd = (await nursery.start(serve_epmd, 0, "127.0.0.1,::1")).port
        alive = unique("py6").partition("@")[0]
        node = LocalNode(f"{alive}@ip6host", {"cookie": COOKIE, "epmd_port": epmd})  # listen_host: default
        await nursery.start(node.serve)
        await node.run(serve_example)
        target = f"{alive}@ip6host"
        code = (
            f"io:format(\"RESULT ~p~n\", [net_adm:ping('{target}')]), "
            f"io:format(\"CALL ~p~n\", [gen_server:call({{counter, '{target}'}}, inc)]), "
            "receive after infinity -> ok end."
        )
        name = unique("e6").partition("@")[0] + "@ip6host"
        argv = [erl, "-noshell", "-proto_dist", "inet6_tcp", "-sname", name, "-setcookie", COOKIE]
        argv += ["-kernel", "inetrc", f'"{inetrc}"', "-eval", code]
        async with start_peer(argv, epmd, name) as peer:
            assert await peer.line("RESULT ") == "pong"
            assert await peer.line("CALL ") == "1"

            async def address() -> str:
                return pj.node.current().peers[Atom(name)].address

            assert (await node.run(address)).startswith("::1:")  # it came over IPv6
        # and an IPv4 erl reaches the same default node (one dual-stack socket)
        v4 = unique("e4")
        code = f"io:format(\"RESULT ~p~n\", [net_adm:ping('{target}')]), receive after infinity -> ok end."
        inetrc4 = tmp_path / "inetrc4"
        inetrc4.write_text('{host, {127,0,0,1}, ["ip6host"]}.\n{lookup, [file, native]}.\n')
        argv = [erl, "-noshell", "-sname", v4, "-setcookie", COOKIE, "-kernel", "inetrc", f'"{inetrc4}"']
        async with start_peer([*argv, "-eval", code], epmd, v4) as peer:
            assert await peer.line("RESULT ") == "pong"
        nursery.cancel_scope.cancel()
