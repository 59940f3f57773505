"""The command lines of workers that start on their own (see :mod:`philipjose.farm.joining` and
:mod:`philipjose.farm.server`)::

    philipjose worker --join FARMER_NODE [--farmer-port PORT] [--cookie-file F] [--name NODE]
    philipjose worker --listen [HOST:]PORT [--slots N] [--cookie-file F]
    philipjose worker --stop ADDRESS [--timeout S] [--cookie-file F]
    philipjose farm ping ADDRESS [--timeout S] [--cookie-file F]
    philipjose farm run SCRIPT --accept-workers --cookie-file F [--min-workers N] [--server ADDRESS]...

The secret (the farm's, or the server's, cookie) comes from ``--cookie-file`` (a file of mode 0600;
any other mode is refused) or else from the first line of stdin; never from the command line or
the environment. ``farm run --cookie-file F`` uses the cookie in F, or writes a fresh random one
there (mode 0600) when F does not exist, so that the same file can be handed to the workers.
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from philipjose._argtypes import positive_float, positive_int
from philipjose.farm.errors import FarmError
from philipjose.farm.launch import LaunchError, read_secret, read_secret_file
from philipjose.farm.server import INFO, STOP, ServerAddress, ask, describe_info, parse_address

__all__ = [
    "RUN_OPTIONS",
    "add_ping_action",
    "add_run_options",
    "add_worker_modes",
    "announce",
    "cli_error",
    "farm_cookie",
    "run_options",
    "worker_mode",
]

_DEFAULT_TIMEOUT = 10.0


def _address(text: str) -> ServerAddress:
    try:
        return parse_address(text, default_host="127.0.0.1")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_worker_modes(parser: argparse.ArgumentParser) -> None:
    """``philipjose worker``'s modes for workers that start on their own."""
    group = parser.add_argument_group(
        "workers that start on their own",
        "--join joins a running farm (Farm(accept_workers=True)); --listen runs a long-lived server that "
        "farms connect to (Farm(servers=[...])); --stop stops such a server",
    )
    modes = group.add_mutually_exclusive_group()
    modes.add_argument("--join", metavar="FARMER_NODE", default=None, help="join the farm of this node")
    modes.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        default=None,
        help="serve farms on HOST:PORT (default host: all interfaces, named by this host's name)",
    )
    modes.add_argument("--stop", metavar="ADDRESS", type=_address, default=None, help="stop the server there")
    group.add_argument(
        "--slots",
        type=positive_int,
        default=None,
        metavar="N",
        help="--listen: workers at once (default: cores)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=_DEFAULT_TIMEOUT,
        metavar="S",
        help=f"--stop: seconds to wait for the server's answer (default {_DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--lifeline", action="store_true", help="--join: exit when stdin ends (how servers start workers)"
    )
    group.add_argument("--came", choices=("joined", "server"), default="joined", help=argparse.SUPPRESS)
    group.add_argument("--origin", default="", help=argparse.SUPPRESS)


def _secret(args: argparse.Namespace) -> bytes:
    if args.cookie_file is not None:
        return read_secret_file(args.cookie_file)
    return read_secret()


def cli_error(command: str, message: str, status: int = 2) -> int:
    """Print ``philipjose COMMAND: error: MESSAGE`` on stderr; returns ``status``."""
    print(f"philipjose {command}: error: {message}", file=sys.stderr)
    return status


def worker_mode(args: argparse.Namespace, node_options: dict[str, Any]) -> int | None:
    """Run ``philipjose worker --join/--listen/--stop``; None when none of them was given.

    ``node_options``: what the worker's node is started with (TLS, frame and message sizes, ticktime)."""
    if args.join is None and args.listen is None and args.stop is None:
        return None
    if args.listen is not None:  # a bad address is said before the secret is asked for
        try:
            args.listen_address = parse_address(args.listen, default_host="")
        except ValueError as exc:
            return cli_error("worker", str(exc))
    try:
        secret = _secret(args)
    except (LaunchError, OSError) as exc:
        print(f"philipjose worker: no usable secret: {exc}", file=sys.stderr)
        return 2
    if args.stop is not None:
        return _admin("worker", args.stop, STOP, args.timeout, secret, node_options)
    if args.listen is not None:
        return _listen(args, secret, node_options)
    return _join(args, secret, node_options)


def _join(args: argparse.Namespace, secret: bytes, node_options: dict[str, Any]) -> int:
    import philipjose as pj
    from philipjose.farm.joining import JoinRefused, joiner_name
    from philipjose.farm.worker import FarmerUnreachable, serve

    options = dict(node_options)
    options.setdefault("net_ticktime", _farm_ticktime())
    if args.farmer_port is not None:
        options["peer_ports"] = {args.join: args.farmer_port}
    try:
        pj.run(
            functools.partial(
                serve,
                lifeline=args.lifeline,
                max_message_size=args.max_message_size_value,
                came=args.came,
                origin=args.origin,
            ),
            args.join,
            None,
            node=args.name or joiner_name(),
            cookie=secret,
            epmd=False,
            listen_host=args.listen_host,
            hidden=True,
            **options,
        )
    except (FarmerUnreachable, JoinRefused) as exc:
        print(f"philipjose worker: {exc}", file=sys.stderr)
        return 1
    return 0


def _farm_ticktime() -> float:
    from philipjose.farm.farm import DEFAULT_FARM_NET_TICKTIME

    return DEFAULT_FARM_NET_TICKTIME


def _listen(args: argparse.Namespace, secret: bytes, node_options: dict[str, Any]) -> int:
    import socket

    import philipjose as pj
    from philipjose.farm.server import serve_server

    address: ServerAddress = args.listen_address
    listen_host = address.host or None
    if address.host in ("", "0.0.0.0", "::"):
        address = ServerAddress(socket.getfqdn(), address.port)
    slots = args.slots or os.cpu_count() or 1
    options = dict(node_options)
    options.setdefault("net_ticktime", _farm_ticktime())
    worker_args = ["--net-ticktime", f"{options['net_ticktime']:g}"]
    worker_args += ["--max-message-size", str(args.max_message_size_value)]
    tls = options.get("tls")
    if tls is not None and tls.files is not None:
        worker_args += tls.files.argv()
    try:
        pj.run(
            serve_server,
            address,
            slots,
            worker_args,
            node=address.node,
            cookie=secret,
            epmd=False,
            port=address.port,
            listen_host=listen_host,
            hidden=True,
            **options,
        )
    except OSError as exc:
        return cli_error("worker", f"cannot listen on {args.listen}: {exc.strerror or exc}", 1)
    return 0


def _admin(
    command: str,
    address: ServerAddress,
    request: Any,
    timeout: float,
    secret: bytes,
    node_options: dict[str, Any] | None = None,
) -> int:
    import philipjose as pj
    from philipjose.farm.joining import joiner_name

    async def main() -> Any:
        return await ask(address, request, timeout)

    try:
        answer = pj.run(
            main,
            node=joiner_name(token="admin" + secrets.token_hex(3)),
            cookie=secret,
            epmd=False,
            listen_host="127.0.0.1",
            hidden=True,
            **(node_options or {}),
        )
    except FarmError as exc:
        print(f"philipjose {command}: {exc}", file=sys.stderr)
        return 1
    if request == STOP:
        print(f"{address}: stopping; {answer} worker(s) finish their tasks")
    else:
        print(describe_info(answer))
    return 0


# -- philipjose farm ping / farm run ---------------------------------------------------------------------


def add_ping_action(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from philipjose.node.tls import add_tls_arguments

    ping = actions.add_parser(
        "ping",
        help="check that a worker server (philipjose worker --listen) answers",
        description="Ask the server at ADDRESS ([HOST:]PORT) how it is (lfarm-admin's ping): one line "
        "and exit status 0 when it answers; one line and exit status 1 when it cannot be reached or "
        "does not answer within --timeout seconds. The server's cookie is read from --cookie-file "
        "(0600) or stdin.",
    )
    ping.add_argument("address", metavar="ADDRESS", type=_address)
    ping.add_argument("--timeout", type=positive_float, default=_DEFAULT_TIMEOUT, metavar="S")
    ping.add_argument("--cookie-file", type=Path, default=None, help="read the cookie from this 0600 file")
    add_tls_arguments(ping)
    ping.set_defaults(func=_ping)


def _ping(args: argparse.Namespace) -> int:
    from philipjose.node.errors import NodeConfigError
    from philipjose.node.tls import tls_from_args

    try:
        secret = _secret(args)
        tls = tls_from_args(args)
    except (LaunchError, OSError, NodeConfigError) as exc:
        return cli_error(
            "farm ping", f"no usable secret: {exc}" if not isinstance(exc, NodeConfigError) else str(exc)
        )
    return _admin("farm ping", args.address, INFO, args.timeout, secret, {"tls": tls} if tls else None)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``farm run``'s options for workers that start on their own."""
    parser.add_argument(
        "--accept-workers",
        action="store_true",
        default=None,
        help="accept workers that join on their own (philipjose worker --join NODE, the node is printed)",
    )
    parser.add_argument(
        "--cookie-file",
        metavar="FILE",
        type=Path,
        default=None,
        help="the farm's cookie: read from FILE (mode 0600), or a fresh one written there when FILE does "
        "not exist; needed by --accept-workers and --server",
    )
    parser.add_argument(
        "--min-workers",
        type=int,
        default=None,
        metavar="N",
        help="dispatch no task before N workers are up at once",
    )
    parser.add_argument(
        "--farmer-name",
        metavar="NAME[@HOST]",
        default=None,
        help="the farmer's node name (default: farmer-<random>@this host), for workers that join each farm",
    )
    parser.add_argument(
        "--farmer-port",
        type=int,
        default=None,
        metavar="PORT",
        help="the port the farmer's node listens on (default: any free one)",
    )
    parser.add_argument(
        "--server",
        metavar="ADDRESS",
        action="append",
        default=None,
        help="ask the worker server at HOST:PORT for workers (repeatable)",
    )


RUN_OPTIONS = ("accept_workers", "cookie_file", "min_workers", "server", "farmer_name", "farmer_port")


def farm_cookie(path: Path) -> bytes:
    """The cookie in ``path`` (mode 0600), or a fresh random one written there (mode 0600)."""
    if path.exists():
        return read_secret_file(path)
    secret = secrets.token_hex(16).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
    return secret


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Farm options ``farm run``'s flags ask for; ``ValueError`` for an inconsistent set."""
    options: dict[str, Any] = {}
    elastic = bool(args.accept_workers) or bool(args.server)
    if elastic and args.cookie_file is None:
        raise ValueError("--accept-workers and --server need --cookie-file FILE (the secret workers read)")
    if args.cookie_file is not None:
        try:
            options["cookie"] = farm_cookie(args.cookie_file)
        except (LaunchError, OSError) as exc:
            raise ValueError(f"--cookie-file {args.cookie_file}: {exc}") from None
    if args.accept_workers:
        options["accept_workers"] = True
    if args.server:
        options["servers"] = [str(_address(s)) for s in args.server]
    if args.farmer_name is not None:
        options["farmer_name"] = args.farmer_name
    if args.farmer_port is not None:
        if not 0 <= args.farmer_port <= 65535:
            raise ValueError(f"--farmer-port must be from 0 to 65535, not {args.farmer_port}")
        options["farmer_port"] = args.farmer_port
    if args.min_workers is not None:
        if args.min_workers < 0:
            raise ValueError(f"--min-workers must be at least 0, not {args.min_workers}")
        options["min_workers"] = args.min_workers
    return options


def announce(farm: Any, cookie_file: Path | None) -> None:
    """What ``farm run --accept-workers`` prints on stderr so that workers can be started: the node
    (never the cookie: it is in the file the user gave)."""
    where = f" --cookie-file {cookie_file}" if cookie_file is not None else ""
    port = f" --farmer-port {farm._farmer_port}"  # for hosts that cannot reach this host's EPMD
    print(
        f"philipjose farm run: accepting workers: philipjose worker --join {farm.node}{port}{where}",
        file=sys.stderr,
        flush=True,
    )
