"""One ``net_ticktime`` per cluster: a node with a shorter tick time drops an idle peer that ticks at
OTP's default (60 s), as a real ``erl`` node with that tick time does, and keeps one that ticks as
often as itself. The farm's nodes use 20 s (``docs/farm.md``, "One tick time for the cluster"): an
Erlang or Elixir node at the default that waits quietly on a farm call longer than that is dropped."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.interop.dist_support import COOKIE, private_epmd, python_node, start_peer
from tests.node.support import unique
from tests.tools import require

pytestmark = pytest.mark.interop

#: Pings the given nodes, then says nothing (it has nothing to send: only its ticks go out) and
#: reports, for each, whether its connection went down within 12 s, and after how long.
QUIET = """
Targets = [list_to_atom(T) || T <- string:tokens("TARGETS", ",")],
ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
[pong = net_adm:ping(T) || T <- Targets],
T0 = erlang:monotonic_time(millisecond),
Wait = fun W(Left, Acc) ->
    receive {nodedown, N, _} -> W(lists:delete(N, Left), [{N, erlang:monotonic_time(millisecond) - T0} | Acc])
    after max(0, 12000 - (erlang:monotonic_time(millisecond) - T0)) -> {Left, Acc}
    end
end,
{Up, Down} = Wait(Targets, []),
[io:format("RESULT ~s down ~p~n", [N, Ms]) || {N, Ms} <- Down],
[io:format("RESULT ~s up~n", [N]) || N <- Up],
io:format("DONE~n"),
halt().
"""


def _erl(epmd_port: int, name: str, code: str, *extra: str) -> Any:
    # hidden: the peers' connections stay the ones they make (no mesh through 'global')
    argv = [require("erl"), "-noshell", "-hidden", "-sname", name, "-setcookie", COOKIE, *extra]
    argv += ["-eval", code]
    return start_peer(argv, epmd_port, name)


async def _quiet_results(peer: Any) -> dict[str, str]:
    results: dict[str, str] = {}
    with trio.fail_after(60):
        while (line := await peer.line("")) != "DONE":
            if line.startswith("RESULT "):
                node, _, outcome = line[len("RESULT ") :].partition(" ")
                results[node] = outcome
    return results


async def test_a_shorter_ticktime_drops_a_quiet_default_peer_as_otp_does() -> None:
    async with private_epmd() as epmd_port, python_node(epmd_port, net_ticktime=2) as py:
        assert py.dist is not None
        py_name = str(py.dist.name)
        reference = unique("ref")  # name@host
        # the OTP reference: an erl node with the same short tick time, idle, serving nothing
        idle = "receive never -> ok end."
        async with _erl(epmd_port, reference, idle, "-kernel", "net_ticktime", "2") as ref_node:
            targets = f"{py_name},{reference}"
            await trio.sleep(1)  # let the reference node register with EPMD
            async with (
                _erl(epmd_port, unique("dflt"), QUIET.replace("TARGETS", targets)) as default_peer,
                _erl(
                    epmd_port,
                    unique("same"),
                    QUIET.replace("TARGETS", py_name),
                    "-kernel",
                    "net_ticktime",
                    "2",
                ) as same_peer,
            ):
                default = await _quiet_results(default_peer)
                same = await _quiet_results(same_peer)
            ref_node.kill()
    # OTP's node and ours both drop the quiet peer that ticks every 15 s, within 1 to 2 tick times
    for node in (py_name, reference):
        outcome = default[node]
        assert outcome.startswith("down "), default
        assert 1500 <= int(outcome.split()[1]) <= 6000, default
    # a peer ticking as often as the node is kept
    assert same == {py_name: "up"}, same
