"""Capture distribution transcripts from a real ``erl`` into ``tests/node/data/*.hex``.

Run ``python3 -m tests.node.capture_transcripts`` from the repository root (needs ``erl`` and
``epmd``). It starts a private ``epmd -port P`` and ``erl -sname`` on loopback (``ERL_EPMD_PORT=P``),
then, driving the sans-I/O handshake and connection objects by hand over plain Trio sockets, records
every chunk of bytes exchanged:

- ``accept.hex``: erl connects to us (we are the acceptor) and sends one control message of every
  kind it can produce (REG_SEND, SEND_SENDER, LINK, UNLINK_ID, MONITOR_P by pid and by name,
  DEMONITOR_P, EXIT2, EXIT, ALIAS_SEND, SPAWN_REQUEST, a fragmented 140 kB message, net_adm:ping's
  monitored '$gen_call' to net_kernel) and ticks.
- ``connect.hex``: we connect to erl (we are the initiator) and provoke the control messages it
  sends back: SEND_SENDER, MONITOR_P_EXIT (noproc and a real exit), EXIT, UNLINK_ID_ACK, SPAWN_REPLY.
- ``accept_wrong_cookie.hex`` / ``connect_wrong_cookie.hex``: the same handshakes with cookies that
  differ.

File format, one record per line: ``# key value`` metadata (cookie, node names, flags, creation and
challenges we used), ``< HEX`` bytes received from erl, ``> HEX`` bytes we sent. The replay tests in
``test_transcripts.py`` feed the ``<`` bytes to fresh machines, regenerate our side from the metadata,
and check that it matches the ``>`` bytes.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from philipjose.epmd import port_please, register
from philipjose.node import control as c
from philipjose.node import handshake as hs
from philipjose.node.connection import Connection
from philipjose.node.errors import AuthenticationError
from philipjose.node.flags import ADVERTISED
from philipjose.node.framing import Tick
from philipjose.node.sentinels import NEED_DATA
from philipjose.term import Atom, Pid, Reference

DATA = Path(__file__).parent / "data"
COOKIE = b"transcript-cookie"
HOST = socket.gethostname().split(".")[0]
PY_NODE = f"pycap@{HOST}"
ERL_NODE = f"erlcap@{HOST}"

# What erl does once connected to us (accept scenario). Py, Pid, Alias and Creation are bound by
# the script; every step sends us at least one control message.
ACCEPT_SCRIPT = r"""
[PyS, CreS] = init:get_plain_arguments(),
Py = list_to_atom(PyS), Cre = list_to_integer(CreS),
NB = atom_to_binary(Py, utf8),
Pid = binary_to_term(<<131, 88, 119, (byte_size(NB)), NB/binary, 1:32, 0:32, Cre:32>>),
Alias = binary_to_term(<<131, 90, 3:16, 119, (byte_size(NB)), NB/binary, Cre:32, 1:32, 2:32, 3:32>>),
Wait = fun W() -> case lists:member(Py, nodes(hidden)) of true -> ok;
                  false -> net_kernel:connect_node(Py), timer:sleep(20), W() end end,
Wait(),
{sink, Py} ! hello,
{sink, Py} ! {[1, 2.5, -7, 1 bsl 70, <<"bin">>, <<1:3>>, "str", 'atöm', #{k => v}], self(), make_ref()},
Pid ! {self(), via_pid},
link(Pid),
unlink(Pid),
R1 = monitor(process, Pid),
demonitor(R1),
monitor(process, {sink, Py}),
exit(Pid, kill),
spawn(fun() -> link(Pid), exit(boom) end),
timer:sleep(100),
Alias ! via_alias,
spawn_request(Py, lists, reverse, [[1, 2]], []),
{sink, Py} ! binary:copy(<<7>>, 140000),
spawn(fun() -> net_adm:ping(Py) end),
timer:sleep(2500),
{sink, Py} ! done,
receive after 60000 -> ok end.
"""

# The erl side of the connect scenario: a registered process that answers our requests.
CONNECT_SCRIPT = r"""
register(capture, self()),
Loop = fun L() ->
    receive
        {From, echo, X} -> From ! {echo, X}, L();
        {From, spawn_victim} ->
            V = spawn(fun() -> receive {exit, R} -> exit(R) end end),
            From ! {victim, V}, L();
        stop -> ok
    end
end,
io:format("ready~n"),
Loop().
"""


class Recorder:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def meta(self, key: str, value: Any) -> None:
        self.lines.append(f"# {key} {value}")

    async def send(self, data: bytes) -> None:
        self.lines.append(f"> {data.hex()}")
        await self.stream.send_all(data)

    async def recv(self) -> bytes:
        data = await self.stream.receive_some(1 << 20)
        if data:
            self.lines.append(f"< {data.hex()}")
        return data

    def save(self, name: str) -> None:
        (DATA / name).write_text("\n".join(self.lines) + "\n")
        print(f"wrote {name}: {len(self.lines)} records", file=sys.stderr)


async def hs_event(rec: Recorder, machine: hs.Handshake) -> hs.HandshakeEvent | None:
    while (event := machine.next_event()) is NEED_DATA:
        data = await rec.recv()
        if not data:
            return None
        machine.receive_data(data)
    assert not isinstance(event, type(NEED_DATA))
    return event  # type: ignore[return-value]


async def accept_handshake(rec: Recorder, cookie: bytes, creation: int) -> hs.Handshake | None:
    machine = hs.Handshake(initiator=False, cookie=cookie)
    name = await hs_event(rec, machine)
    assert isinstance(name, hs.SendName), name
    rec.meta("peer_name", name.name)
    await rec.send(machine.send(hs.Status("ok")))
    challenge = secrets.randbits(32)
    rec.meta("challenge", challenge)
    await rec.send(machine.send(hs.Challenge(PY_NODE, ADVERTISED, challenge, creation)))
    try:
        reply = await hs_event(rec, machine)
    except AuthenticationError:
        return None
    assert isinstance(reply, hs.ChallengeReply), reply
    await rec.send(machine.send(machine.challenge_ack()))
    return machine


async def connect_handshake(rec: Recorder, cookie: bytes, creation: int) -> hs.Handshake | None:
    machine = hs.Handshake(initiator=True, cookie=cookie)
    await rec.send(machine.send(hs.SendName(PY_NODE, ADVERTISED, creation)))
    status = await hs_event(rec, machine)
    assert status == hs.Status("ok"), status
    challenge = await hs_event(rec, machine)
    assert isinstance(challenge, hs.Challenge)
    ours = secrets.randbits(32)
    rec.meta("challenge", ours)
    await rec.send(machine.send(machine.challenge_reply(ours)))
    try:
        ack = await hs_event(rec, machine)
    except AuthenticationError:  # pragma: no cover - erl closes instead
        return None
    if ack is None:
        return None
    return machine


async def next_control(rec: Recorder, conn: Connection) -> Any:
    while (event := conn.next_event()) is NEED_DATA:
        data = await rec.recv()
        if not data:
            raise EOFError
        conn.receive_data(data)
    return event


_TICK_FAST = ("-kernel", "net_ticktime", "4")  # so that a tick shows up within a few seconds


def start_erl(env: dict[str, str], cookie: bytes, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "erl",
            "-noshell",
            "-sname",
            "erlcap",
            "-setcookie",
            cookie.decode(),
            "-kernel",
            "net_ticktime",
            "4",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
    )


async def capture_accept(env: dict[str, str], epmd_port: int, cookie: bytes, out: str) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    async with await register("pycap", port, epmd_port=epmd_port) as reg:
        erl = start_erl(
            env, cookie, "-eval", ACCEPT_SCRIPT.replace("\n", " "), "-extra", PY_NODE, str(reg.creation)
        )
        try:
            with trio.fail_after(30):
                stream = await listener.accept()
            rec = Recorder(stream)
            rec.meta("cookie", COOKIE.decode())
            rec.meta("our_name", PY_NODE)
            rec.meta("our_flags", ADVERTISED)
            rec.meta("our_creation", reg.creation)
            machine = await accept_handshake(rec, COOKIE, reg.creation)
            if machine is not None:
                conn = Connection(machine.flags)
                conn.receive_data(machine.trailing_data)
                with trio.fail_after(30):
                    while True:
                        event = await next_control(rec, conn)
                        print(type(event).__name__, file=sys.stderr)
                        if isinstance(event, c.RegSend) and event.message == Atom("done"):
                            break
            rec.save(out)
            await stream.aclose()
        finally:
            erl.kill()
            erl.wait()
            await listener.aclose()


async def capture_connect(env: dict[str, str], epmd_port: int, cookie: bytes, out: str) -> None:
    erl = start_erl(env, cookie, "-eval", CONNECT_SCRIPT.replace("\n", " "))
    try:
        assert erl.stdout is not None
        line = await trio.to_thread.run_sync(erl.stdout.readline)
        assert b"ready" in line, line
        info = await port_please("erlcap", epmd_port=epmd_port)
        assert info is not None
        stream = await trio.open_tcp_stream("127.0.0.1", info.port)
        rec = Recorder(stream)
        creation = 0x1234ABCD
        rec.meta("cookie", COOKIE.decode())
        rec.meta("our_name", PY_NODE)
        rec.meta("our_flags", ADVERTISED)
        rec.meta("our_creation", creation)
        machine = await connect_handshake(rec, COOKIE, creation)
        if machine is not None:
            conn = Connection(machine.flags)
            conn.receive_data(machine.trailing_data)
            me = Pid(PY_NODE, 1, 0, creation)
            capture = Atom("capture")

            async def expect(kind: type) -> Any:
                while True:
                    event = await next_control(rec, conn)
                    if not isinstance(event, Tick):
                        assert isinstance(event, kind), event
                        return event

            def ref(n: int) -> Reference:
                return Reference(PY_NODE, creation, (n, 0, 0))

            with trio.fail_after(30):
                await rec.send(conn.send(c.RegSend(me, capture, (me, Atom("echo"), [1, "two", 3.0]))))
                await expect(c.Send)
                await rec.send(conn.send(c.MonitorP(me, Atom("no_such_name"), ref(1))))
                await expect(c.MonitorPExit)
                await rec.send(conn.send(c.RegSend(me, capture, (me, Atom("spawn_victim")))))
                victim = (await expect(c.Send)).message[1]
                await rec.send(conn.send(c.Link(me, victim)))
                await rec.send(conn.send(c.MonitorP(me, victim, ref(2))))
                await rec.send(conn.send(c.Send(victim, (Atom("exit"), Atom("bye")), me)))
                await expect(c.Exit)
                await expect(c.MonitorPExit)
                await rec.send(conn.send(c.RegSend(me, capture, (me, Atom("spawn_victim")))))
                victim2 = (await expect(c.Send)).message[1]
                await rec.send(conn.send(c.Link(me, victim2)))
                await rec.send(conn.send(c.UnlinkId(7, me, victim2)))
                await expect(c.UnlinkIdAck)
                await rec.send(
                    conn.send(c.SpawnRequest(ref(3), me, me, Atom("timer"), Atom("sleep"), 1, [], [10]))
                )
                await expect(c.SpawnReply)
            await stream.aclose()
        rec.save(out)
    finally:
        erl.kill()
        erl.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def main() -> None:
    DATA.mkdir(exist_ok=True)
    epmd_port = free_port()
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
    epmd = subprocess.Popen(["epmd", "-port", str(epmd_port)], env=env)
    try:
        with trio.fail_after(10):
            while True:
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", epmd_port)).aclose()
                    break
                except OSError:
                    await trio.sleep(0.05)
        await capture_accept(env, epmd_port, COOKIE, "accept.hex")
        await capture_accept(env, epmd_port, b"not-the-cookie", "accept_wrong_cookie.hex")
        await capture_connect(env, epmd_port, COOKIE, "connect.hex")
        await capture_connect(env, epmd_port, b"not-the-cookie", "connect_wrong_cookie.hex")
    finally:
        epmd.kill()
        epmd.wait()


if __name__ == "__main__":
    trio.run(main)
