"""The public node API: ``pj.run(main, node=..., cookie=...)``, ``pj.node.start``, ``connect``, ``ping``,
``monitor_node``, ``nodes``.

Options of :func:`start` (and of :func:`run`, which passes them on):

- ``name``: ``"alive"`` (short name on this host, like ``erl -sname``; with ``longnames=True`` the fully
  qualified host, like ``erl -name``) or a full ``"alive@host"``.
- ``cookie``: str or bytes; default ``$PHILIPJOSE_COOKIE``, else ``~/.erlang.cookie`` (created 0400).
- ``port``: the listening port (default 0: any free port). ``listen_host``: default None: all
  interfaces, IPv4 and IPv6 (one dual-stack socket; IPv4 only where the host has no IPv6), so
  ``erl -proto_dist inet6_tcp`` nodes reach it too; give ``"127.0.0.1"`` to accept local IPv4 peers
  only, ``"0.0.0.0"`` for all IPv4 interfaces, ``"::"`` for IPv6 only.
- ``epmd``: register with EPMD (default True; ``ensure_epmd`` starts ``philipjose epmd`` if none
  answers: a daemon that exits 60 s after its last node is gone, listening on loopback only when
  ``listen_host`` is a loopback address, else on all interfaces; see ``docs/epmd.md``). With
  ``epmd=False`` the node does not register: peers must be told its ``port`` (for
  ``erl``: ``-erl_epmd_port``-style setups, or our ``peer_ports``), and the creation is random.
  ``epmd_port``: default ``$ERL_EPMD_PORT`` or 4369.
- ``peer_ports``: ``{"alive@host": port}`` used instead of asking EPMD when connecting.
- ``net_ticktime`` (default 60 s, as OTP), ``handshake_timeout`` (default 7 s, OTP's net_setuptime),
  ``max_frame_size`` (default 128 MiB: the longest frame a peer may send; OTP sends fragments of
  64 KiB).
- ``max_message_size``: the largest message (control message and payload, as encoded) sent or
  received, in bytes (default 1 GiB). Over it a message is refused by itself and the connection stays
  up: a send raises :class:`~philipjose.node.errors.MessageTooLarge` when the message was encoded at
  once, else its sender gets an exit signal ``system_limit``; a received one is skipped and logged
  (``docs/distribution.md``, *Large messages*).
- ``busy_wait``: seconds a plain-TCP connection's reader keeps polling its socket after it runs dry
  before it sleeps (default 0.0002; 0 turns it off), like the BEAM's scheduler busy wait: a reply
  that comes back within that time is picked up without waking an idle CPU.
- ``dist_buf_busy_limit``: bytes that may be queued on one connection before it is *busy* (default
  1 MiB, OTP's ``+zdbbl`` default); a process that sends to a busy connection is held back at its
  next ``receive`` until the queue has drained to half of it (``docs/distribution.md``,
  *Back-pressure*).
- ``tls``: None (plain TCP, the default), or a :class:`~philipjose.node.tls.TLSConfig` (from
  :func:`~philipjose.node.tls.tls_config`), an ``ssl.SSLContext`` usable for both sides, or a
  ``(server_context, client_context)`` pair. With TLS the node listens and connects only with TLS,
  as OTP's ``inet_tls_dist`` (``erl -proto_dist inet_tls``); see ``docs/security.md``.
- ``io_output``, ``io_input``: the runtime's default group leader (the io server that answers
  ``io:format`` from Erlang code that Python spawned, and ``pj.io``): output to ``sys.stdout``
  (None, the default), a text stream, a ``logging.Logger`` (a record per line, at INFO) or a
  callable taking the text; reads answer ``eof`` (None, the default), or come from a ``str`` or a
  text stream (see ``philipjose.io``). Also accepted by ``pj.run`` without a node.

- ``hidden``: False (the default) makes a *visible* node, like ``erl``: it sets ``DFLAG_PUBLISHED`` in
  the handshake and registers with EPMD as a normal node, so Erlang's ``nodes()`` lists it,
  ``net_kernel:monitor_nodes(true)`` reports it, and it takes part in ``global`` (see
  :mod:`philipjose.node.global_`). ``hidden=True`` is ``erl -hidden``: only ``nodes(hidden)`` lists it,
  and its connections are hidden on both sides. Farm workers and the farmer's node are hidden.
- ``binaries``: ``"bytes"`` (default: a binary from another node is ``bytes``) or ``"str"`` (one that is
  valid UTF-8 is a ``str``, as Elixir sees its strings); ``none``: ``"undefined"`` (default: ``None``
  goes out as ``undefined``) or ``"nil"`` (``None`` goes out as ``nil`` and ``nil`` comes in as
  ``None``). See :mod:`philipjose.term.styles` and ``docs/terms.md``, *Strings and nil*.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from philipjose.actors import Exit, Runtime, current_runtime
from philipjose.actors import call as _call
from philipjose.actors import run as _actors_run
from philipjose.actors import self as _self
from philipjose.epmd import NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL, Registration, ensure_epmd, register
from philipjose.epmd.ensure import daemon_address
from philipjose.io.server import check_options as check_io_options
from philipjose.node import global_, netkernel
from philipjose.node.cookie import resolve_cookie
from philipjose.node.errors import NodeConfigError, NotDistributedError
from philipjose.node.framing import DEFAULT_MAX_FRAME_SIZE
from philipjose.node.listener import open_listeners, serve_listeners
from philipjose.node.names import make_node_name
from philipjose.node.node import (
    DEFAULT_BUSY_WAIT,
    DEFAULT_DIST_BUF_BUSY_LIMIT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_NET_TICKTIME,
    NODE_KINDS,
    Node,
)
from philipjose.node.tls import TLSOption, as_tls_config
from philipjose.term import Atom
from philipjose.term.styles import TermStyle

__all__ = [
    "add_service",
    "connect",
    "current",
    "demonitor_node",
    "disconnect",
    "monitor_node",
    "monitor_nodes",
    "name",
    "nodes",
    "ping",
    "run",
    "spawn",
    "start",
]

log: Final = logging.getLogger("philipjose.node")

_IS_AUTH: Final = Atom("is_auth")
_YES: Final = Atom("yes")


_services: list[Callable[[Node], Any]] = []


def add_service(install: Callable[[Node], Any]) -> None:
    """Have every node started from now on call ``install(node)`` once it is up (after
    ``net_kernel``). Layers above the node (``philipjose.rpc``) plug in this way, so that the node
    never imports them. Adding the same callable again does nothing."""
    if install not in _services:
        _services.append(install)


def current() -> Node:
    """The running runtime's :class:`Node`; :class:`NotDistributedError` if distribution is off."""
    dist = current_runtime().dist
    if not isinstance(dist, Node):
        raise NotDistributedError("distribution is not started (use pj.run(..., node=...) or pj.node.start)")
    return dist


def name() -> Atom:
    """This node's name (``nonode@nohost`` when distribution is off)."""
    return current_runtime().node


async def start(
    name: str,
    *,
    cookie: str | bytes | None = None,
    longnames: bool = False,
    port: int = 0,
    listen_host: str | None = None,
    epmd: bool = True,
    epmd_port: int | None = None,
    peer_ports: dict[str, int] | None = None,
    net_ticktime: float = DEFAULT_NET_TICKTIME,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    tls: TLSOption = None,
    busy_wait: float = DEFAULT_BUSY_WAIT,
    dist_buf_busy_limit: int = DEFAULT_DIST_BUF_BUSY_LIMIT,
    hidden: bool = False,
    binaries: str = "bytes",
    none: str = "undefined",
    io_output: Any = None,
    io_input: Any = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Node:
    """Start distribution in the running runtime and return the :class:`Node` (see the module doc).

    Listens, registers with EPMD (unless ``epmd=False``), starts the ``net_kernel`` process, and from
    then on new pids carry the node name. Raises :class:`NodeConfigError` for bad options or when
    distribution is already started, ``OSError`` when the port cannot be bound, and the EPMD errors
    (``EpmdError``, an ``OSError``) when registration fails (for example, the name is taken).
    """
    rt = current_runtime()
    if rt.dist is not None:
        raise NodeConfigError(f"distribution is already started as {rt.node}")
    full = make_node_name(name, longnames=longnames)
    secret = resolve_cookie(cookie)
    if net_ticktime <= 0 or handshake_timeout <= 0 or max_frame_size <= 0:
        raise NodeConfigError("net_ticktime, handshake_timeout and max_frame_size must be positive")
    if not 0 <= busy_wait <= 1:
        raise NodeConfigError(f"busy_wait must be between 0 and 1 second, not {busy_wait!r}")
    if type(dist_buf_busy_limit) is not int or dist_buf_busy_limit <= 0:
        raise NodeConfigError(
            f"dist_buf_busy_limit must be a positive int (bytes), not {dist_buf_busy_limit!r}"
        )
    if type(hidden) is not bool:
        raise NodeConfigError(f"hidden must be True or False, not {hidden!r}")
    if type(max_message_size) is not int or not 0 < max_message_size < 1 << 32:
        raise NodeConfigError(
            f"max_message_size must be a positive int (bytes) under 4 GiB, not {max_message_size!r}"
        )
    if not 0 <= port <= 65535:
        raise NodeConfigError(f"bad port {port}")
    try:
        style = TermStyle(binaries, none)  # type: ignore[arg-type]
    except ValueError as exc:
        raise NodeConfigError(str(exc)) from None
    tls_config = as_tls_config(tls)
    _configure_io(rt, io_output, io_input)
    listeners = await open_listeners(port, listen_host)
    bound = listeners[0].socket.getsockname()[1]
    registration: Registration | None = None
    try:
        if epmd:
            await ensure_epmd(port=epmd_port, address=daemon_address(listen_host))
            registration = await register(
                full.partition("@")[0],
                bound,
                epmd_port=epmd_port,
                node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL,
            )
            creation = registration.creation
        else:
            creation = secrets.randbelow(0xFFFFFFFF - 4) + 4
    except BaseException:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        raise
    dist = Node(
        rt,
        full,
        secret,
        creation,
        net_ticktime=net_ticktime,
        handshake_timeout=handshake_timeout,
        max_frame_size=max_frame_size,
        epmd_port=epmd_port,
        peer_ports=peer_ports,
        tls=tls_config,
        busy_wait=busy_wait,
        dist_buf_busy_limit=dist_buf_busy_limit,
        hidden=hidden,
        style=style,
        max_message_size=max_message_size,
    )
    dist.port = bound
    rt.set_node(Atom(full), creation)
    rt.dist = dist
    rt.start_system_task(_serve, dist, listeners)
    if registration is not None:
        rt.start_system_task(_hold, registration)
    pid, _ = rt.spawn(netkernel.net_kernel, ())
    rt.register(netkernel.NAME, pid)
    pid, _ = rt.spawn(global_.server, (dist,))
    rt.register(global_.NAME, pid)
    for install in _services:
        install(dist)
    mode = " with TLS" if tls_config else ""
    log.info("node %s listening on port %d%s (creation %d)", full, bound, mode, creation)
    return dist


def _configure_io(rt: Runtime, output: Any, input: Any) -> None:
    if output is None and input is None:
        return
    try:
        check_io_options(output, input)
    except TypeError as exc:
        raise NodeConfigError(str(exc)) from None
    if rt.default_group_leader is not None and rt.lookup(rt.default_group_leader):
        raise NodeConfigError("io_output/io_input: the default group leader is already running")
    rt.io_options = {"output": output, "input": input}


async def _serve(dist: Node, listeners: list[trio.SocketListener]) -> None:
    await serve_listeners(dist.accept, listeners)


async def _hold(registration: Registration) -> None:
    try:
        await registration.wait_closed()
        log.warning("EPMD closed this node's registration: peers can no longer find it by name")
    finally:
        await registration.aclose()


def run(
    main: Callable[..., Awaitable[Any]],
    *args: Any,
    node: str | None = None,
    cookie: str | bytes | None = None,
    clock: trio.abc.Clock | None = None,
    dashboard: int | str | None = None,
    **options: Any,
) -> Any:
    """Start a runtime, make it the distributed node ``node`` (if given), run ``main(*args)``.

    Without ``node`` this is :func:`philipjose.actors.run`. ``options`` are those of :func:`start`.
    ``dashboard`` (a port, 0 for any free one, or ``"HOST:PORT"``; needs the ``philipjose[dashboard]``
    extra): serve the node's live web page there for the runtime's life, on 127.0.0.1 unless a host is
    given (its URL: ``philipjose.dashboard.url()``; see "The dashboard" in ``docs/actors.md``).
    Returns ``main``'s result (see :func:`philipjose.actors.run`).
    """
    try:
        check_io_options(options.get("io_output"), options.get("io_input"))
    except TypeError as exc:
        raise NodeConfigError(str(exc)) from None
    setup: Callable[[], Awaitable[Any]] | None = None
    if node is None:
        io_output, io_input = options.pop("io_output", None), options.pop("io_input", None)
        if cookie is not None or options:
            raise NodeConfigError("cookie and node options need node=...")
        if io_output is not None or io_input is not None:

            async def io_setup() -> None:
                _configure_io(current_runtime(), io_output, io_input)

            setup = io_setup
    else:
        name = node

        async def node_setup() -> None:
            await start(name, cookie=cookie, **options)

        setup = node_setup
    if dashboard is not None:
        from philipjose.dashboard import with_node_dashboard  # the optional extra: only when asked

        setup = with_node_dashboard(setup, dashboard)
    return _actors_run(main, *args, setup=setup, clock=clock)


async def connect(node: str) -> bool:
    """Connect to ``node`` now (if not connected); True when connected, False if it cannot be reached."""
    dist = current()
    target = Atom(node)
    if target == dist.name:
        return True
    peer = dist.ensure_connecting(target)
    await peer.done.wait()
    return peer.up


async def ping(node: str, *, timeout: float = 10.0) -> bool:
    """Like ``net_adm:ping``: connect and ask the peer's ``net_kernel`` ``{is_auth, Us}``.

    True for ``pong``, False for ``pang``. Call it from a process.
    """
    dist = current()
    target = Atom(node)
    if target == dist.name:
        return True
    if not await connect(target):
        return False
    try:
        answer = await _call((netkernel.NAME, target), (_IS_AUTH, dist.name), timeout=timeout)
    except (Exit, TimeoutError):
        return False
    return bool(answer == _YES)


def nodes(kind: str = "visible") -> list[Atom]:
    """The nodes this node is connected to, like Erlang's ``nodes/1``: ``"visible"`` (the default, as
    ``nodes()``), ``"hidden"`` or ``"connected"`` (both). A connection is visible when both nodes are
    (neither was started hidden). ``[]`` when distribution is off."""
    dist = current_runtime().dist
    if not isinstance(dist, Node):
        if kind not in NODE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(NODE_KINDS)}, not {kind!r}")
        return []
    return dist.nodes(kind)


def monitor_nodes(flag: bool = True, kind: str = "visible") -> bool:
    """Like ``net_kernel:monitor_nodes(Flag, [{node_type, Kind}])``: the calling process gets
    ``(Atom('nodeup'), Node)`` when a connection of ``kind`` (``"visible"``, the default as in OTP,
    ``"hidden"`` or ``"connected"``) comes up, and ``(Atom('nodedown'), Node)`` when one goes down.
    Each call with ``flag=True`` adds a subscription; ``flag=False`` removes one. Returns True."""
    current().monitor_nodes(_self(), flag, kind)
    return True


def monitor_node(node: str, flag: bool = True) -> bool:
    """The calling process gets ``(Atom('nodedown'), node)`` when the connection to ``node`` goes down.

    Like ``erlang:monitor_node/2``: connects if needed (a node that cannot be reached gives nodedown
    at once); each call adds one monitor; ``flag=False`` removes one. Returns True.
    """
    dist = current()
    target = Atom(node)
    me = _self()
    if flag:
        dist.monitor_node(me, target)
    else:
        dist.demonitor_node(me, target)
    return True


def demonitor_node(node: str) -> bool:
    """Same as ``monitor_node(node, False)``."""
    return monitor_node(node, False)


async def spawn(
    node: str,
    module: str,
    function: str,
    args: list[Any] | tuple[Any, ...],
    *,
    link: bool = False,
    monitor: bool = False,
) -> Any:
    """Spawn ``module:function(*args)`` on ``node``: the new pid, or ``(pid, ref)`` with ``monitor``.

    Implemented by :func:`philipjose.rpc.spawn.spawn` (see there); needs ``philipjose.rpc``.
    """
    from philipjose.rpc.spawn import spawn as _spawn  # rpc sits above node: imported when used

    return await _spawn(node, module, function, args, link=link, monitor=monitor)


def disconnect(node: str) -> bool:
    """Close the connection to ``node`` (like ``erlang:disconnect_node``); True if there was one."""
    return current().disconnect(Atom(node))
