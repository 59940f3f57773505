"""EPMD client on Trio: register a node, look one up, list names (and KILL, STOP, DUMP).

Each call opens one TCP connection to the port mapper, sends one request and reads one reply, all
within ``timeout`` seconds (5 by default): connecting, sending and reading share that one deadline.
:func:`register` keeps its connection open, because EPMD forgets the node when it closes.

The EPMD port is ``epmd_port`` when given, else the ``ERL_EPMD_PORT`` environment variable (as
``erl`` reads it), else 4369. Node names are alive names: the part before ``@``.

Errors: :class:`~philipjose.epmd.errors.EpmdUnreachableError` (nothing answers, connection broke),
:class:`~philipjose.epmd.errors.EpmdTimeoutError` (no answer in time),
:class:`~philipjose.epmd.errors.EpmdRefusedError` (EPMD said no),
:class:`~philipjose.epmd.errors.EpmdProtocolError` (the peer is not speaking EPMD). Bad arguments
raise :class:`ValueError`.
"""

from __future__ import annotations

import os
from types import TracebackType

import trio

from philipjose.epmd.errors import (
    EpmdProtocolError,
    EpmdRefusedError,
    EpmdTimeoutError,
    EpmdUnreachableError,
)
from philipjose.epmd.protocol import (
    NEED_DATA,
    NODE_TYPE_NORMAL,
    Alive2Reply,
    Alive2Request,
    ClientConnection,
    ConnectionClosed,
    DumpReply,
    DumpRequest,
    KillReply,
    KillRequest,
    NamesReply,
    NamesRequest,
    NodeInfo,
    PortPleaseRequest,
    PortReply,
    Reply,
    Request,
    StopReply,
    StopRequest,
)

__all__ = [
    "DEFAULT_EPMD_PORT",
    "Names",
    "Registration",
    "default_epmd_port",
    "dump",
    "kill",
    "names",
    "port_please",
    "register",
    "stop",
]

DEFAULT_EPMD_PORT = 4369
_READ_SIZE = 65536


def default_epmd_port() -> int:
    """``$ERL_EPMD_PORT`` if set (ValueError if it is not a port number), else 4369."""
    text = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not text:
        return DEFAULT_EPMD_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"ERL_EPMD_PORT is not a port number: {text!r}")
    return int(text)


def _check_alive_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"node name must be str, not {type(name).__name__}")
    if "@" in name:
        raise ValueError(f"EPMD takes the alive name, the part before '@': {name!r}")


class Names(list[tuple[str, int]]):
    """The ``(name, port)`` list from :func:`names`, plus ``epmd_port``: the port EPMD says it uses.

    It compares equal to a plain list with the same items.
    """

    epmd_port: int

    def __init__(self, items: tuple[tuple[str, int], ...] = (), *, epmd_port: int = 0) -> None:
        super().__init__(items)
        self.epmd_port = epmd_port


async def _connect(host: str, port: int) -> trio.SocketStream:
    try:
        return await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise EpmdUnreachableError(f"cannot reach EPMD at {host}:{port}: {exc}") from exc


async def _read_event(stream: trio.SocketStream, conn: ClientConnection) -> Reply | ConnectionClosed:
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(_READ_SIZE))


async def _exchange(
    stream: trio.SocketStream, conn: ClientConnection, request: Request
) -> Reply | ConnectionClosed:
    await stream.send_all(conn.send(request))
    return await _read_event(stream, conn)


async def _one_shot(
    request: Request, host: str, epmd_port: int | None, timeout: float
) -> Reply | ConnectionClosed:
    """Connect, send ``request``, return the reply (or ConnectionClosed), close."""
    port = default_epmd_port() if epmd_port is None else epmd_port
    name = type(request).__name__
    try:
        with trio.fail_after(timeout):
            stream = await _connect(host, port)
            async with stream:
                return await _exchange(stream, ClientConnection(), request)
    except trio.TooSlowError:
        raise EpmdTimeoutError(f"EPMD at {host}:{port} did not answer {name} within {timeout}s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise EpmdUnreachableError(f"connection to EPMD at {host}:{port} broke: {exc}") from exc


class Registration:
    """A live EPMD registration: the node is known to EPMD until :meth:`aclose` (or process exit).

    ``creation`` is what EPMD assigned (32 bits for version-6 nodes; 1..3 if EPMD answered with the
    old 16-bit ``ALIVE2_RESP``). Use as ``async with await register(...) as reg:``, or call
    :meth:`aclose`. :meth:`wait_closed` returns when EPMD drops the connection (EPMD exited or
    unregistered the node), so a node can notice and register again.
    """

    __slots__ = ("_conn", "_stream", "creation", "epmd_host", "epmd_port", "extended", "name", "port")

    def __init__(
        self,
        stream: trio.SocketStream,
        conn: ClientConnection,
        reply: Alive2Reply,
        *,
        name: str,
        port: int,
        epmd_host: str,
        epmd_port: int,
    ) -> None:
        self._stream = stream
        self._conn = conn
        self.creation = reply.creation
        self.extended = reply.extended
        self.name = name
        self.port = port
        self.epmd_host = epmd_host
        self.epmd_port = epmd_port

    def __repr__(self) -> str:
        return (
            f"<Registration {self.name!r} port={self.port} creation={self.creation} "
            f"epmd={self.epmd_host}:{self.epmd_port}>"
        )

    async def aclose(self) -> None:
        """Unregister: close the connection to EPMD. Idempotent."""
        await trio.aclose_forcefully(self._stream)

    async def wait_closed(self) -> None:
        """Wait until EPMD closes the registration connection, or until :meth:`aclose`.

        Raises :class:`EpmdProtocolError` if EPMD sends bytes on it (it never should).
        """
        try:
            await _read_event(self._stream, self._conn)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def register(
    name: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    node_type: int = NODE_TYPE_NORMAL,
    protocol: int = 0,
    highest_version: int = 6,
    lowest_version: int = 5,
    extra: bytes = b"",
    timeout: float = 5.0,
) -> Registration:
    """Register alive name ``name`` with distribution port ``port``; keep the registration open.

    ``node_type`` is 77 for a normal node, 72 for a hidden one. EPMD accepts registrations only from
    its own host, so ``host`` is normally the loopback address. Raises
    :class:`EpmdRefusedError` if the name is taken by a live node (or EPMD closed without a reply,
    which it does for registrations from other hosts).
    """
    _check_alive_name(name)
    request = Alive2Request(name, port, node_type, protocol, highest_version, lowest_version, extra)
    port_ = default_epmd_port() if epmd_port is None else epmd_port
    conn = ClientConnection()
    stream: trio.SocketStream | None = None
    try:
        with trio.fail_after(timeout):
            stream = await _connect(host, port_)
            reply = await _exchange(stream, conn, request)
    except trio.TooSlowError:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise EpmdTimeoutError(f"EPMD at {host}:{port_} did not answer ALIVE2 within {timeout}s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        assert stream is not None
        await trio.aclose_forcefully(stream)
        raise EpmdUnreachableError(f"connection to EPMD at {host}:{port_} broke: {exc}") from exc
    except BaseException:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise
    if isinstance(reply, Alive2Reply) and reply.ok:
        return Registration(stream, conn, reply, name=name, port=port, epmd_host=host, epmd_port=port_)
    await trio.aclose_forcefully(stream)
    if isinstance(reply, Alive2Reply):
        raise EpmdRefusedError(
            f"EPMD at {host}:{port_} refused to register {name!r} (result {reply.result}); "
            "the name is probably in use by a live node"
        )
    raise EpmdRefusedError(
        f"EPMD at {host}:{port_} closed without answering ALIVE2 for {name!r}; "
        "EPMD accepts registrations only from its own host"
    )


async def port_please(
    name: str, host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0
) -> NodeInfo | None:
    """Where does node ``name`` (alive name) on ``host`` listen? None if it is not registered."""
    _check_alive_name(name)
    reply = await _one_shot(PortPleaseRequest(name), host, epmd_port, timeout)
    if not isinstance(reply, PortReply):
        raise EpmdProtocolError(f"EPMD at {host} closed without answering PORT_PLEASE2 for {name!r}")
    return reply.node


async def names(host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0) -> Names:
    """The ``(name, port)`` pairs registered with the EPMD on ``host`` (a :class:`Names` list)."""
    reply = await _one_shot(NamesRequest(), host, epmd_port, timeout)
    if not isinstance(reply, NamesReply):  # pragma: no cover - the parser yields NamesReply at EOF
        raise EpmdProtocolError(f"EPMD at {host} closed without answering NAMES")
    return Names(reply.names, epmd_port=reply.epmd_port)


async def dump(host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0) -> DumpReply:
    """EPMD's diagnostic dump (answered to local peers only; others get EpmdRefusedError)."""
    reply = await _one_shot(DumpRequest(), host, epmd_port, timeout)
    if not isinstance(reply, DumpReply):
        raise EpmdRefusedError(f"EPMD at {host} closed without answering DUMP (not a local peer?)")
    return reply


async def kill(host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0) -> bool:
    """Ask EPMD to exit. True if it agreed ("OK"); False ("NO") while nodes are registered, unless
    it runs with relaxed command checking. Non-local peers get EpmdRefusedError."""
    reply = await _one_shot(KillRequest(), host, epmd_port, timeout)
    if not isinstance(reply, KillReply):
        raise EpmdRefusedError(f"EPMD at {host} closed without answering KILL (not a local peer?)")
    return reply.ok


async def stop(
    name: str, host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0
) -> bool:
    """Forcibly unregister ``name``: True if it was registered ("STOPPED"), False ("NOEXIST").

    EPMD allows it only when started with relaxed command checking; otherwise it closes without a
    reply and this raises EpmdRefusedError.
    """
    _check_alive_name(name)
    reply = await _one_shot(StopRequest(name), host, epmd_port, timeout)
    if not isinstance(reply, StopReply):
        raise EpmdRefusedError(
            f"EPMD at {host} closed without answering STOP (needs relaxed command checking, local peer)"
        )
    return reply.stopped
