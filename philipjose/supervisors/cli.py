"""``philipjose run TREE.toml``: start a supervision tree, keep it up, stop it cleanly on a signal.

The tree is checked whole before anything starts (an invalid file exits with status 2 and a message
naming file, key and reason). Once every child has started, one line is printed on stdout::

    philipjose run: started TREE.toml, top supervisor Pid(...)

With a ``[node]`` table the runtime is first made the distributed node ``name`` (with ``cookie``,
else the usual ``~/.erlang.cookie``; registered with EPMD, which is started if none answers), so
Erlang nodes can reach the tree's registered processes. Then the command waits. On SIGINT or SIGTERM
it stops the tree (children in reverse start order, as the top supervisor's parent does in OTP) and
exits 0 (a second signal while it stops kills the top supervisor: exit 1). If the top supervisor
dies on its own (restart intensity exceeded, auto_shutdown, ...) it exits 1; if the tree fails to
start, 1 as well.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

import trio

from philipjose import actors, node
from philipjose._argtypes import dashboard_address
from philipjose.node.errors import NodeError
from philipjose.node.tls import tls_config
from philipjose.supervisors.config import TreeConfig, load_config
from philipjose.supervisors.errors import ConfigError, StartError
from philipjose.supervisors.tree import start_tree
from philipjose.term.types import Atom

__all__ = ["add_command"]

_LOG = logging.getLogger("philipjose.supervisors.cli")
_SIGNAL = Atom("$pj_run_signal")
_EXIT = Atom("EXIT")
_DOWN = Atom("DOWN")


def add_command(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a supervision tree described in a TOML file",
        description="Start the supervision tree described in TREE.toml (see docs/supervision.md), keep "
        "it running, and on SIGINT/SIGTERM stop it in reverse start order and exit 0. Exits 1 if the "
        "top supervisor dies or the tree fails to start, 2 if the file is invalid.",
    )
    parser.add_argument("tree", metavar="TREE.toml", help="the tree to run")
    parser.add_argument(
        "--dashboard",
        metavar="[HOST:]PORT",
        type=dashboard_address,
        default=None,
        help="serve the node's live web page (processes, supervision trees, connections) at PORT "
        "(0: any free port) on 127.0.0.1, or on HOST; overrides [node] dashboard; its URL is printed "
        "(needs pip install 'philipjose[dashboard]')",
    )
    parser.add_argument(
        "--hidden",
        action="store_true",
        help="start the [node] as a hidden node (like erl -hidden), whatever its hidden key says",
    )
    parser.set_defaults(func=_run)


async def _signal_watcher(owner: Any) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            actors.send(owner, (_SIGNAL, int(signum)))


async def _main(tree: TreeConfig, dashboard: bool = False) -> int:
    actors.process_flag("trap_exit", True)
    me = actors.self()
    watcher = actors.spawn_link(_signal_watcher, me)
    try:
        sup = await start_tree(tree)
    except StartError as exc:
        _LOG.error("the tree in %s failed to start: %r", tree.source, exc.reason)
        actors.exit(watcher, Atom("kill"))
        return 1
    ref = actors.monitor(sup)
    print(f"philipjose run: started {tree.source}, top supervisor {sup!r}", flush=True)
    if dashboard:
        from philipjose.dashboard import url  # the optional extra, there when a dashboard was asked for

        print(f"philipjose run: dashboard at {url()}", flush=True)

    def wanted(message: Any) -> bool:
        if type(message) is not tuple:
            return False
        if len(message) == 2 and message[0] == _SIGNAL:
            return True
        return len(message) == 5 and message[0] == _DOWN and message[1] == ref

    message = await actors.receive(match=wanted)
    if message[0] == _DOWN:
        _LOG.error("the top supervisor %r ended with %r", sup, message[4])
        actors.exit(watcher, Atom("kill"))
        return 1
    _LOG.info("signal %s: stopping the tree", signal.Signals(message[1]).name)
    actors.exit(sup, Atom("shutdown"))
    down = await actors.receive(match=wanted)
    if down[0] == _SIGNAL:  # a second signal while stopping: do not wait any longer
        _LOG.warning("signal %s again: killing the tree", signal.Signals(down[1]).name)
        actors.exit(sup, Atom("kill"))
        down = await actors.receive(
            match=lambda m: type(m) is tuple and len(m) == 5 and m[0] == _DOWN and m[1] == ref
        )
    actors.exit(watcher, Atom("kill"))
    if down[4] != Atom("shutdown"):
        _LOG.error("the top supervisor ended with %r", down[4])
        return 1
    _LOG.info("tree stopped")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        tree = load_config(args.tree)
    except ConfigError as exc:
        print(f"philipjose run: {exc}", file=sys.stderr)
        return 2
    dashboard = args.dashboard if args.dashboard is not None else getattr(tree.node, "dashboard", None)
    if dashboard is not None:
        from philipjose.dashboard import DashboardUnavailable, require  # imports without the extra

        try:
            require()
        except DashboardUnavailable as exc:
            print(f"philipjose run: error: {exc}", file=sys.stderr)
            return 2
    if tree.node is None:
        result: int = node.run(_main, tree, dashboard is not None, dashboard=dashboard)
        return result
    conf = tree.node
    try:
        tls = None
        if conf.tls_certfile is not None:
            tls = tls_config(conf.tls_certfile, conf.tls_keyfile, conf.tls_cafile, verify=conf.tls_verify)
        options: dict[str, Any] = {}
        if conf.dist_buf_busy_limit is not None:
            options["dist_buf_busy_limit"] = conf.dist_buf_busy_limit
        if conf.max_message_size is not None:
            options["max_message_size"] = conf.max_message_size
        options["hidden"] = conf.hidden or args.hidden
        options["binaries"] = conf.binaries
        options["none"] = conf.none
        result = node.run(
            _main,
            tree,
            dashboard is not None,
            node=conf.name,
            cookie=conf.cookie,
            tls=tls,
            dashboard=dashboard,
            **options,
        )
    except (NodeError, OSError) as exc:
        print(f"philipjose run: cannot start node {tree.node.name!r}: {exc}", file=sys.stderr)
        return 1
    return result
