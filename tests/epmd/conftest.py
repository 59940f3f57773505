"""Real parts for the EPMD tests: our server in-process, OTP's epmd binary, real erl nodes.

Every test uses free ports (never 4369) and kills what it starts. Nothing here sleeps to wait: erl
nodes print a ready line, OTP's epmd runs with ``-d -d`` and we read its log lines.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
import trio

from philipjose.epmd import EpmdServer, serve
from tests.tools import require

COOKIE = "pj_epmd_test_cookie"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str = "pj") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(eq=False)
class LineReader:
    """Lines from a subprocess pipe, read by a background task; ``expect`` waits for one."""

    lines: list[str] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)
    closed: bool = False

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        buf = b""
        try:
            while data := await stream.receive_some(65536):
                buf += data
                *complete, buf = buf.split(b"\n")
                self.lines.extend(line.decode("utf-8", "replace").rstrip("\r") for line in complete)
                self._wake()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        if buf:
            self.lines.append(buf.decode("utf-8", "replace"))
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def expect(self, text: str, *, start: int = 0) -> str:
        """The first line from index ``start`` on that contains ``text`` (waits for it)."""
        index = start
        while True:
            for line in self.lines[index:]:
                if text in line:
                    return line
            index = len(self.lines)
            if self.closed:
                raise AssertionError(f"{text!r} never came; output was:\n" + "\n".join(self.lines))
            await self._changed.wait()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(eq=False)
class Child:
    process: trio.Process
    output: LineReader


class Children:
    """Starts subprocesses whose stdout+stderr are read line by line; kills them all at the end."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._children: list[Child] = []

    async def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> Child:
        process = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        child = Child(process, LineReader())
        assert process.stdout is not None
        self._nursery.start_soon(child.output.pump, process.stdout)
        self._children.append(child)
        return child

    async def kill_all(self) -> None:
        for child in self._children:
            if child.process.returncode is None:
                child.process.kill()
            await child.process.wait()


@pytest.fixture
async def children(nursery: trio.Nursery) -> AsyncIterator[Children]:
    kids = Children(nursery)
    try:
        yield kids
    finally:
        with trio.CancelScope(shield=True):
            await kids.kill_all()


@pytest.fixture
async def our_epmd(nursery: trio.Nursery) -> EpmdServer:
    """Our server on a free port, on all interfaces (as `philipjose epmd` by default)."""
    server: EpmdServer = await nursery.start(serve, 0, None)
    return server


@dataclass(eq=False)
class OtpEpmd:
    """OTP's own epmd on a free port, in the foreground with debug output we can wait on."""

    port: int
    child: Child

    async def wait_unregistered(self, name: str, *, start: int = 0) -> None:
        await self.child.output.expect(f"unregistering '{name}:", start=start)

    @property
    def mark(self) -> int:
        return len(self.child.output.lines)


async def start_otp_epmd(children: Children, *extra: str) -> OtpEpmd:
    path = require("epmd")
    port = free_port()
    child = await children.start([path, "-d", "-d", "-port", str(port), *extra])
    with trio.fail_after(20):
        await child.output.expect("entering the main select() loop")
    return OtpEpmd(port, child)


@pytest.fixture
async def otp_epmd(children: Children) -> OtpEpmd:
    return await start_otp_epmd(children)


def erl_env(epmd_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ERL_EPMD_PORT"] = str(epmd_port)
    return env


async def start_erl(
    children: Children,
    name: str,
    epmd_port: int,
    code: str,
    *,
    start_epmd: bool = False,
) -> Child:
    """``erl -noshell -sname NAME -setcookie C -eval CODE`` using the EPMD at ``epmd_port``.

    ``start_epmd=False`` passes ``-start_epmd false`` so erl never launches an epmd of its own.
    """
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE]
    if not start_epmd:
        argv += ["-start_epmd", "false"]
    return await children.start([*argv, "-eval", code], env=erl_env(epmd_port))


# Prints "ready <node> <creation>" and then waits forever.
WAIT_FOREVER = (
    'io:format("ready ~s ~p~n", [node(), erlang:system_info(creation)]), receive after infinity -> ok end.'
)
