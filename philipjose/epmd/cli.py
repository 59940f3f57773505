"""``philipjose epmd``: run the embedded EPMD server, or query a running EPMD (``--names`` ...)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from philipjose._argtypes import positive_float
from philipjose.epmd import client
from philipjose.epmd.daemon import detach
from philipjose.epmd.errors import EpmdError
from philipjose.epmd.server import DEFAULT_PACKET_TIMEOUT, EpmdServer, open_listeners, parse_addresses

__all__ = ["add_command"]

_DESCRIPTION = """\
Run an Erlang Port Mapper Daemon that real Erlang/Elixir nodes and philipjose nodes use to find
each other, like OTP's epmd: registrations from this host only, held while their connection is
open; names answered to anyone. With --names, --kill or --stop, query a running EPMD instead.
"""


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "epmd", help="run (or query) an Erlang port mapper daemon", description=_DESCRIPTION
    )
    parser.add_argument(
        "--port", type=int, default=None, help="TCP port (default: $ERL_EPMD_PORT, else 4369)"
    )
    parser.add_argument(
        "--address",
        default=None,
        help="comma-separated addresses to listen on; loopback is always added (default: all interfaces)",
    )
    parser.add_argument(
        "--daemon",
        action="store_true",
        help="detach into the background; return once it listens (exit 0 also if one already runs)",
    )
    parser.add_argument(
        "--relaxed-command-check",
        action="store_true",
        help="allow --kill with nodes registered, and --stop NAME",
    )
    parser.add_argument(
        "--packet-timeout",
        type=float,
        default=DEFAULT_PACKET_TIMEOUT,
        help=f"seconds a connection has to send its request (default: {DEFAULT_PACKET_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections at most (default: 1000, fewer under a low file descriptor limit)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=None,
        metavar="S",
        help="exit after S seconds with no node registered and no connection open (default: never, "
        "as OTP's epmd; the daemon a node starts when it finds no EPMD uses 60)",
    )
    parser.add_argument("--log-file", default=None, help="also log to this file (the daemon's only log)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--names", action="store_true", help="list the names a running EPMD holds")
    action.add_argument("--kill", action="store_true", help="ask a running EPMD to exit")
    action.add_argument("--stop", metavar="NAME", help="forcibly unregister NAME (needs relaxed checking)")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    try:
        port = client.default_epmd_port() if args.port is None else args.port
    except ValueError as exc:
        print(f"philipjose epmd: {exc}", file=sys.stderr)
        return 2
    if args.names or args.kill or args.stop is not None:
        return _query(args, port)
    if args.daemon:
        return _run_daemon(args, port)
    if args.log_file:
        _log_to(args.log_file)
    try:
        trio.run(partial(_serve, args, port, lambda server: None))
    except OSError as exc:
        return _bind_failure(exc, port, print_to=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 0


def _log_to(path: str) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


async def _serve(args: argparse.Namespace, port: int, on_started: Callable[[EpmdServer], None]) -> None:
    # Bind first, outside any nursery, so a bind failure surfaces as a plain OSError.
    listeners = await open_listeners(port, parse_addresses(args.address))
    server = EpmdServer(
        relaxed_command_check=args.relaxed_command_check,
        packet_timeout=args.packet_timeout,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_listeners, listeners)
        on_started(server)


def _bind_failure(exc: OSError, port: int, *, print_to: Any) -> int:
    if exc.errno == errno.EADDRINUSE:
        print(f"philipjose epmd: there is already an EPMD running at port {port}", file=print_to)
        return 0
    print(f"philipjose epmd: cannot listen on port {port}: {exc}", file=sys.stderr)
    return 1


def _run_daemon(args: argparse.Namespace, port: int) -> int:
    log_file = os.path.abspath(args.log_file) if args.log_file else None

    def body(notify: Callable[[str], None]) -> int:
        root = logging.getLogger()
        for handler in list(root.handlers):  # stderr is /dev/null now
            root.removeHandler(handler)
        if log_file:
            _log_to(log_file)
        try:
            trio.run(partial(_serve, args, port, lambda s: notify(f"started {os.getpid()} {s.port}")))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                notify(f"in-use {port}")
                return 0
            raise
        return 0

    message = detach(body)
    kind, _, rest = message.partition(" ")
    if kind == "started":
        pid, _, bound = rest.partition(" ")
        print(f"philipjose epmd: started (pid {pid}) on port {bound}")
        return 0
    if kind == "in-use":
        print(f"philipjose epmd: there is already an EPMD running at port {port}")
        return 0
    print(f"philipjose epmd: the daemon failed to start: {rest or message or 'no report'}", file=sys.stderr)
    return 1


def _query(args: argparse.Namespace, port: int) -> int:
    async def query() -> int:
        if args.names:
            names = await client.names(epmd_port=port)
            print(f"epmd: up and running on port {names.epmd_port} with data:")
            for name, node_port in names:
                print(f"name {name} at port {node_port}")
            return 0
        if args.kill:
            ok = await client.kill(epmd_port=port)
            print("Killed" if ok else "Killing not allowed - living nodes in database.")
            return 0 if ok else 1
        stopped = await client.stop(args.stop, epmd_port=port)
        print("STOPPED" if stopped else "NOEXIST")
        return 0 if stopped else 1

    try:
        return trio.run(query)
    except EpmdError as exc:
        print(f"philipjose epmd: {exc}", file=sys.stderr)
        return 1
