"""A philipjose node that Erlang and Elixir nodes can talk to.

Usage: ``python examples/interop_node.py NAME COOKIE [--hidden] [--tls-certfile F --tls-keyfile F
--tls-cafile F [--tls-verify peer|none]]`` (NAME is ``alive@host`` or just ``alive``). The node is
visible, like ``erl``: Erlang's ``nodes()`` lists it and it takes part in ``global``; ``--hidden``
makes it hidden, like ``erl -hidden``. With the ``--tls-*`` options the node speaks TLS distribution
only, like ``erl -proto_dist inet_tls`` (see ``docs/security.md``).
It registers with EPMD (``$ERL_EPMD_PORT`` or 4369; one is started if none answers), prints a line
containing ``ready`` and serves three registered processes:

- ``echo``: on ``{From, Msg}`` sends ``Msg`` to ``From``; at start it joins the pg group ``pyecho`` of
  the default scope, so ``pg:get_members(pyecho)`` on an Erlang node running ``pg`` lists it;
- ``sink``: counts messages; on ``{count, From}`` replies ``{count, N}`` to ``From`` and resets to 0;
- ``counter``: a GenServer; ``call inc`` -> the new value, ``call get`` -> the value,
  ``cast {add, N}`` adds N.

and exposes the rpc module ``pyexample``: ``add(A, B)``, ``echo(X)``, ``crash()`` (raises),
``spawn_idle()`` (a process that returns after one message; returns its pid),
``link_and_report(ErlPid, ReportTo)`` (a process linked to ErlPid that sends ``{reported, Reason}`` to
ReportTo when the link fires; returns ``ok``), ``rpc_back(Node, M, F, Args)`` (calls back into
Erlang with ``rpc.call`` and returns the result) and ``pg_members(Group)`` (the members of the pg
group ``Group`` in the default scope, as this node sees them, Erlang members included).

From Erlang (``erl -sname e -setcookie COOKIE``)::

    {ok, _} = pg:start_link(),  % the default scope (before or after connecting)
    pong = net_adm:ping('py@host'),
    {echo, 'py@host'} ! {self(), hello}, receive hello -> ok end,
    1 = gen_server:call({counter, 'py@host'}, inc),
    3 = rpc:call('py@host', pyexample, add, [1, 2]),
    [3, 2, 1] = erpc:call('py@host', pyexample, rpc_back, [node(), lists, reverse, [[1, 2, 3]]]),
    [Echo] = erpc:call('py@host', pyexample, pg_members, [pyecho]),
    [Echo] = pg:get_members(pyecho).  % once the two scopes have exchanged their members

Over TLS the Erlang node is started with ``erl -proto_dist inet_tls -ssl_dist_optfile FILE -sname e
-setcookie COOKIE``.

The node stops when its main process receives ``stop`` (``{main, 'py@host'} ! stop``).
"""

from __future__ import annotations

import argparse

import philipjose as pj
from philipjose import Atom, Pid, rpc
from philipjose.node.tls import add_tls_arguments, tls_from_args

COUNT = Atom("count")
ADD = Atom("add")
PYECHO = Atom("pyecho")


async def echo() -> None:
    pj.pg.join(PYECHO, pj.self())
    while True:
        msg = await pj.receive()
        if isinstance(msg, tuple) and len(msg) == 2:
            sender, payload = msg
            pj.send(sender, payload)


async def sink() -> None:
    n = 0
    while True:
        msg = await pj.receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == COUNT:
            pj.send(msg[1], (COUNT, n))
            n = 0
        else:
            n += 1


class Counter(pj.GenServer):
    async def init(self, start: int = 0) -> None:
        self.n = start

    async def handle_call(self, request: object, caller: object) -> object:
        if request == Atom("inc"):
            self.n += 1
        elif request != Atom("get"):
            return (Atom("error"), Atom("unknown_call"))
        return self.n

    async def handle_cast(self, msg: object) -> None:
        if type(msg) is tuple and len(msg) == 2 and msg[0] == ADD and type(msg[1]) is int:
            self.n += msg[1]


def add(a: int, b: int) -> int:
    return a + b


def echo_value(x: object) -> object:
    return x


def crash() -> None:
    raise ValueError("crash() was called")


def spawn_idle() -> Pid:
    async def idle() -> None:
        await pj.receive()

    return pj.spawn(idle)


async def link_and_report(erl_pid: Pid, report_to: Pid) -> Atom:
    async def reporter(caller: Pid) -> None:
        pj.process_flag("trap_exit", True)
        pj.link(erl_pid)
        pj.send(caller, Atom("linked"))  # the link is made before the rpc returns
        _, _, reason = await pj.receive(match=lambda m: type(m) is tuple and m[:2] == (Atom("EXIT"), erl_pid))
        pj.send(report_to, (Atom("reported"), reason))

    pj.spawn(reporter, pj.self())
    await pj.receive(match=Atom("linked"))
    return Atom("ok")


async def rpc_back(node: Atom, m: Atom, f: Atom, args: list[object]) -> object:
    return await rpc.call(node, m, f, args, timeout=30)


def pg_members(group: object) -> list[Pid]:
    return pj.pg.get_members(group)


rpc.expose(
    "pyexample",
    {
        "add": add,
        "echo": echo_value,
        "crash": crash,
        "spawn_idle": spawn_idle,
        "link_and_report": link_and_report,
        "rpc_back": rpc_back,
        "pg_members": pg_members,
    },
)


async def main() -> None:
    pj.register("echo", pj.spawn(echo))
    pj.register("sink", pj.spawn(sink))
    await Counter.start(0, name="counter")
    pj.register("main", pj.self())
    print(f"ready {pj.node.name()}", flush=True)
    await pj.receive(match=lambda m: m == Atom("stop"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A philipjose node for Erlang and Elixir nodes to talk to.")
    parser.add_argument("name", help="alive@host, or alive (short name on this host)")
    parser.add_argument("cookie")
    parser.add_argument("--hidden", action="store_true", help="a hidden node, like erl -hidden")
    add_tls_arguments(parser)
    args = parser.parse_args()
    pj.run(main, node=args.name, cookie=args.cookie, tls=tls_from_args(args), hidden=args.hidden)
